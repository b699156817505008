//! Uploaded images: checked by content, re-encoded without metadata, stored under the
//! data dir, each with its alt text.

use std::io::Cursor;
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::db::DbConnection;
use crate::db::schema::media;

/// Images wider or taller than this are scaled down on upload.
const MAX_DIMENSION: u32 = 2400;
/// Longest alt text accepted (Mastodon's limit for image descriptions).
pub const MAX_ALT_CHARS: usize = 1500;

/// A stored image.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = media)]
pub struct Media {
    /// Row id.
    pub id: i64,
    /// The blog it belongs to.
    pub blog_id: i64,
    /// Who uploaded it.
    pub uploaded_by: Option<i64>,
    /// Random file name under the media folder, with extension.
    pub file_name: String,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Size of the stored file.
    pub byte_size: i64,
    /// What the image shows, for people who cannot see it.
    pub alt_text: String,
    /// When it was uploaded.
    pub created_at: NaiveDateTime,
}

impl Media {
    /// The path the image is served at.
    pub fn path(&self) -> String {
        format!("/media/{}", self.file_name)
    }
}

/// An image ready to store: re-encoded, with no metadata.
pub struct ProcessedImage {
    /// The encoded bytes.
    pub bytes: Vec<u8>,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// `jpg` or `png`.
    pub extension: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Checks an alt text: required, trimmed, at most [`MAX_ALT_CHARS`].
pub fn parse_alt_text(input: &str) -> Result<String, String> {
    let alt = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if alt.is_empty() {
        return Err("Describe the image for people who cannot see it (alt text)".into());
    }
    if alt.chars().count() > MAX_ALT_CHARS {
        return Err(format!(
            "Alt text must be {MAX_ALT_CHARS} characters or fewer"
        ));
    }
    Ok(alt)
}

/// Decodes an upload (its type judged by its bytes, not its name), turns it upright,
/// scales down very large images, and encodes it again so no metadata survives:
/// photographs as JPEG, images with transparency or few colours as PNG.
pub fn process_image(bytes: &[u8]) -> Result<ProcessedImage, String> {
    let unsupported = || "The file must be a JPEG, PNG, GIF or WebP image".to_owned();
    let format = image::guess_format(bytes).map_err(|_| unsupported())?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(unsupported());
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|_| "The image could not be read; it may be damaged".to_owned())?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|_| "The image could not be read; it may be damaged".to_owned())?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    if image.width() > MAX_DIMENSION || image.height() > MAX_DIMENSION {
        image = image.resize(
            MAX_DIMENSION,
            MAX_DIMENSION,
            image::imageops::FilterType::Triangle,
        );
    }
    let keep_png =
        matches!(format, ImageFormat::Png | ImageFormat::Gif) || image.color().has_alpha();
    let mut out = Cursor::new(Vec::new());
    let (content_type, extension) = if keep_png {
        image
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| format!("cannot encode image: {e}"))?;
        ("image/png", "png")
    } else {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
        rgb.write_with_encoder(encoder)
            .map_err(|e| format!("cannot encode image: {e}"))?;
        ("image/jpeg", "jpg")
    };
    Ok(ProcessedImage {
        width: image.width(),
        height: image.height(),
        bytes: out.into_inner(),
        content_type,
        extension,
    })
}

/// A random, unguessable file name with the given extension.
pub fn new_file_name(extension: &str) -> String {
    use rand::Rng;
    let token: [u8; 16] = rand::rng().random();
    let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.{extension}")
}

/// Writes the file (to a temporary name first, so a crash leaves no half file) and
/// records it.
pub fn store(
    conn: &mut DbConnection,
    media_dir: &Path,
    blog_id: i64,
    uploaded_by: i64,
    image: &ProcessedImage,
    alt_text: &str,
) -> Result<Media, crate::error::AppError> {
    std::fs::create_dir_all(media_dir)?;
    let file_name = new_file_name(image.extension);
    let temporary = media_dir.join(format!(".{file_name}.part"));
    std::fs::write(&temporary, &image.bytes)?;
    std::fs::rename(&temporary, media_dir.join(&file_name))?;
    let inserted = diesel::insert_into(media::table)
        .values((
            media::blog_id.eq(blog_id),
            media::uploaded_by.eq(uploaded_by),
            media::file_name.eq(&file_name),
            media::content_type.eq(image.content_type),
            media::width.eq(i32::try_from(image.width).unwrap_or(i32::MAX)),
            media::height.eq(i32::try_from(image.height).unwrap_or(i32::MAX)),
            media::byte_size.eq(i64::try_from(image.bytes.len()).unwrap_or(i64::MAX)),
            media::alt_text.eq(alt_text),
            media::created_at.eq(super::now()),
        ))
        .execute(conn);
    if let Err(e) = inserted {
        // Leave no orphan file behind a failed insert.
        let _ = std::fs::remove_file(media_dir.join(&file_name));
        return Err(e.into());
    }
    find_by_file_name(conn, &file_name)?.ok_or(crate::error::AppError::NotFound)
}

/// The image stored under this file name.
pub fn find_by_file_name(conn: &mut DbConnection, file_name: &str) -> QueryResult<Option<Media>> {
    media::table
        .filter(media::file_name.eq(file_name))
        .select(Media::as_select())
        .first(conn)
        .optional()
}

/// Replaces an image's alt text.
pub fn set_alt_text(conn: &mut DbConnection, id: i64, alt_text: &str) -> QueryResult<()> {
    diesel::update(media::table.find(id))
        .set(media::alt_text.eq(alt_text))
        .execute(conn)?;
    Ok(())
}

/// The image with this id.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Media>> {
    media::table
        .find(id)
        .select(Media::as_select())
        .first(conn)
        .optional()
}

/// The images of a blog whose paths appear in the Markdown, in order of appearance.
pub fn referenced_in(
    conn: &mut DbConnection,
    blog_id: i64,
    markdown: &str,
) -> QueryResult<Vec<Media>> {
    let names: Vec<&str> = markdown
        .match_indices("/media/")
        .filter_map(|(i, _)| {
            let rest = &markdown[i + "/media/".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(rest.len());
            Some(&rest[..end]).filter(|n| !n.is_empty())
        })
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: Vec<Media> = media::table
        .filter(media::blog_id.eq(blog_id))
        .filter(media::file_name.eq_any(&names))
        .select(Media::as_select())
        .load(conn)?;
    found.sort_by_key(|m| names.iter().position(|n| *n == m.file_name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_with_text_chunk() -> Vec<u8> {
        let image = DynamicImage::new_rgba8(3, 2);
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).expect("encode");
        out.into_inner()
    }

    #[test]
    fn accepts_images_by_content() {
        let processed = process_image(&png_with_text_chunk()).expect("a png");
        assert_eq!(processed.content_type, "image/png");
        assert_eq!((processed.width, processed.height), (3, 2));
    }

    #[test]
    fn refuses_other_files() {
        assert!(process_image(b"%PDF-1.4 not an image").is_err());
        assert!(process_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
        // A PNG signature followed by junk is damaged, not accepted.
        assert!(process_image(b"\x89PNG\r\n\x1a\n junk").is_err());
    }

    #[test]
    fn alt_text_is_required() {
        assert!(parse_alt_text("   ").is_err());
        assert_eq!(
            parse_alt_text(" A  ward\nteam ").as_deref(),
            Ok("A ward team")
        );
        assert!(parse_alt_text(&"x".repeat(MAX_ALT_CHARS + 1)).is_err());
    }
}
