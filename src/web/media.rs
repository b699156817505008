//! Serving uploaded images.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, route, web};

use super::AppState;
use crate::domain::media;
use crate::error::AppError;

/// `GET /media/{file}`: an uploaded image. Names are random and content never changes,
/// so browsers may keep them for a year.
#[route("/media/{file}", method = "GET", method = "HEAD")]
pub async fn serve(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let file = path.into_inner();
    // Our names are hex with one extension: anything else cannot be ours.
    let valid = file.len() <= 40
        && file.split_once('.').is_some_and(|(stem, ext)| {
            stem.chars().all(|c| c.is_ascii_hexdigit()) && matches!(ext, "jpg" | "png")
        });
    if !valid {
        return Err(AppError::NotFound);
    }
    if req.headers().contains_key(header::IF_NONE_MATCH) {
        let tag = format!("\"{file}\"");
        if req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
        {
            return Ok(HttpResponse::NotModified().finish());
        }
    }
    let name = file.clone();
    let record = state
        .db(move |conn| Ok(media::find_by_file_name(conn, &name)?))
        .await?
        .ok_or(AppError::NotFound)?;
    let bytes = match tokio::fs::read(state.settings.media_dir().join(&record.file_name)).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AppError::NotFound),
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::Ok()
        .content_type(record.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::ETAG, format!("\"{file}\"")))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}
