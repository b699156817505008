//! A blog's profile: the leader's name, role, organisation, about text, links and photo.

use actix_multipart::form::MultipartForm;
use actix_multipart::form::tempfile::TempFile;
use actix_multipart::form::text::Text;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use maud::html;

use super::AppState;
use super::auth::{SignedIn, html_page, html_page_invalid};
use super::ui::{self, Field, Page};
use crate::domain::blogs::{self, Blog, ProfileChanges, ProfileLink, Role};
use crate::domain::html::SafeHtml;
use crate::domain::media::{self, Media};
use crate::domain::names::{Handle, without_controls};
use crate::error::{AppError, FieldError};

/// The link rows the form offers: field names and labels.
const LINK_LABELS: [&str; 4] = [
    "link_label_0",
    "link_label_1",
    "link_label_2",
    "link_label_3",
];
const LINK_URLS: [&str; 4] = ["link_url_0", "link_url_1", "link_url_2", "link_url_3"];
const LINK_LABEL_TEXT: [&str; 4] = ["Link 1 name", "Link 2 name", "Link 3 name", "Link 4 name"];
const LINK_URL_TEXT: [&str; 4] = [
    "Link 1 address",
    "Link 2 address",
    "Link 3 address",
    "Link 4 address",
];

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}/settings", web::get().to(show))
        .route("/@{handle}/settings", web::post().to(save));
}

#[derive(Debug, Default, Clone)]
struct ProfileValues {
    display_name: String,
    role_title: String,
    organisation: String,
    bio: String,
    links: Vec<(String, String)>,
    photo_alt: String,
    header_alt: String,
}

impl ProfileValues {
    fn from_blog(blog: &Blog, images: &Images) -> Self {
        Self {
            display_name: blog.display_name.clone(),
            role_title: blog.role_title.clone().unwrap_or_default(),
            organisation: blog.organisation.clone().unwrap_or_default(),
            bio: blog.bio_markdown.clone(),
            links: blog
                .profile_links()
                .into_iter()
                .map(|l| (l.label, l.url))
                .collect(),
            photo_alt: images
                .photo
                .as_ref()
                .map(|p| p.alt_text.clone())
                .unwrap_or_default(),
            header_alt: images
                .header
                .as_ref()
                .map(|p| p.alt_text.clone())
                .unwrap_or_default(),
        }
    }
}

/// The profile's current images.
#[derive(Debug, Default)]
struct Images {
    photo: Option<Media>,
    header: Option<Media>,
}

async fn load(state: &AppState, me: &SignedIn, handle: String) -> Result<(Blog, Images), AppError> {
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    let user = me.user.clone();
    state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            let role = blogs::role_of(conn, blog.id, user.id)?;
            let allowed = user.is_admin || role.is_some_and(Role::can_publish);
            if !allowed {
                return Err(AppError::Forbidden);
            }
            let mut find = |id: Option<i64>| match id {
                Some(id) => media::find(conn, id),
                None => Ok(None),
            };
            let images = Images {
                photo: find(blog.photo_media_id)?,
                header: find(blog.header_media_id)?,
            };
            Ok((blog, images))
        })
        .await
}

async fn show(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (blog, images) = load(&state, &me, path.into_inner()).await?;
    let values = ProfileValues::from_blog(&blog, &images);
    Ok(html_page(
        &me.chrome(&state),
        form_page(&blog, &images, &values, &[], &me.csrf_token),
    ))
}

fn form_page(
    blog: &Blog,
    images: &Images,
    values: &ProfileValues,
    errors: &[FieldError],
    csrf: &str,
) -> Page {
    let no_value = (String::new(), String::new());
    Page {
        title: format!("Profile – {}", blog.display_name),
        noindex: true,
        breadcrumbs: vec![
            ("Dashboard".into(), "/dashboard".into()),
            (
                blog.display_name.clone(),
                format!("/dashboard/@{}", blog.handle),
            ),
        ],
        // Two-thirds wide, as NHS.UK forms and the post editor are.
        main: html! { div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
            (ui::error_summary(errors))
            h1 { "Profile" span class="nhsuk-caption-l nhsuk-caption--bottom" { "@" (blog.handle) } }
            p { "Shown at the top of the blog and on its " a href={ (blog.path()) "/about" } { "about page" } "." }
            form method="post" action={ "/dashboard/@" (blog.handle) "/settings" } enctype="multipart/form-data" novalidate {
                (ui::csrf_field(csrf))
                (ui::input(Field::text("display_name", "Name").autocomplete("name").required(), &values.display_name, errors))
                (ui::input(Field::text("role_title", "Role (optional)").hint("For example: Chief Executive"), &values.role_title, errors))
                (ui::input(Field::text("organisation", "Organisation (optional)").autocomplete("organization").hint("For example: Example Teaching Hospitals NHS Trust"), &values.organisation, errors))
                (ui::textarea(Field::text("bio", "About (optional)").hint("A few paragraphs about the leader, in Markdown."), &values.bio, 8, errors))
                fieldset class="nhsuk-fieldset" aria-describedby="links-hint" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { h2 class="nhsuk-fieldset__heading" { "Links" } }
                    div class="nhsuk-hint" id="links-hint" { "Web pages about the leader, such as the trust's board page. Each needs a name and an address starting https://" }
                    @for i in 0..LINK_LABELS.len() {
                        @let (label, url) = values.links.get(i).unwrap_or(&no_value);
                        div class="nhsuk-grid-row" {
                            div class="nhsuk-grid-column-one-third" {
                                (ui::input(Field::text(LINK_LABELS[i], LINK_LABEL_TEXT[i]), label, errors))
                            }
                            div class="nhsuk-grid-column-two-thirds" {
                                (ui::input(Field::text(LINK_URLS[i], LINK_URL_TEXT[i]).kind("url"), url, errors))
                            }
                        }
                    }
                }
                (image_fieldset(&PHOTO, images.photo.as_ref(), &values.photo_alt, errors))
                (image_fieldset(&HEADER, images.header.as_ref(), &values.header_alt, errors))
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Save profile" }
            }
        } } },
        ..Page::default()
    }
}

/// One of the profile's images: its form fields and the words used for it.
struct ImageSlot {
    file: &'static str,
    alt: &'static str,
    remove: &'static str,
    name: &'static str,
    alt_label: &'static str,
    alt_hint: &'static str,
    hint: &'static str,
}

/// The leader's photo: the avatar on the blog and on the fediverse.
const PHOTO: ImageSlot = ImageSlot {
    file: "photo",
    alt: "photo_alt",
    remove: "remove_photo",
    name: "photo",
    alt_label: "Photo alt text",
    alt_hint: "For example: Jane Smith, smiling, in a hospital corridor",
    hint: "A square picture works best.",
};

/// The wide banner fediverse apps show across the top of the profile.
const HEADER: ImageSlot = ImageSlot {
    file: "header",
    alt: "header_alt",
    remove: "remove_header",
    name: "header image",
    alt_label: "Header image alt text",
    alt_hint: "For example: The front entrance of the general hospital",
    hint: "Shown across the top of the profile in Mastodon and other fediverse apps; about three times as wide as it is tall.",
};

fn image_fieldset(
    slot: &ImageSlot,
    current: Option<&Media>,
    alt: &str,
    errors: &[FieldError],
) -> maud::Markup {
    let heading = capitalise(slot.name);
    let file_label = if current.is_some() {
        format!("Replace the {} (optional)", slot.name)
    } else {
        format!("{heading} (optional)")
    };
    html! {
        fieldset class="nhsuk-fieldset" {
            legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { h2 class="nhsuk-fieldset__heading" { (heading) } }
            @if let Some(image) = current {
                img src=(image.path()) alt=(image.alt_text) width="120" class="nhsuk-u-margin-bottom-3";
                div class="nhsuk-checkboxes" data-module="nhsuk-checkboxes" {
                    div class="nhsuk-checkboxes__item" {
                        input class="nhsuk-checkboxes__input" id=(slot.remove) name=(slot.remove) type="checkbox" value="yes";
                        label class="nhsuk-label nhsuk-checkboxes__label" for=(slot.remove) { "Remove the " (slot.name) }
                    }
                }
            }
            (ui::file_input(Field::text(slot.file, &file_label).hint(slot.hint), "image/jpeg,image/png,image/gif,image/webp", errors))
            (ui::input(Field::text(slot.alt, slot.alt_label).hint(slot.alt_hint), alt, errors))
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What the form asks for one image.
enum ImageChange {
    /// Nothing.
    Keep,
    /// New alt text for the current image.
    Describe(String),
    /// Take it off the profile.
    Remove,
    /// A new image, with its alt text.
    Replace(media::ProcessedImage, String),
}

/// Reads one image's fields: a new file is checked by content and needs alt text; the
/// current image keeps alt text unless removed.
async fn image_change(
    slot: &ImageSlot,
    current: Option<&Media>,
    file: Option<&TempFile>,
    alt: &str,
    remove: bool,
    errors: &mut Vec<FieldError>,
) -> Result<ImageChange, AppError> {
    let file = file.filter(|f| f.size > 0);
    if file.is_none() && (remove || current.is_none()) {
        return Ok(if remove {
            ImageChange::Remove
        } else {
            ImageChange::Keep
        });
    }
    let alt = match media::parse_alt_text(alt) {
        Ok(alt) => alt,
        Err(e) => {
            errors.push(FieldError::new(slot.alt, e));
            return Ok(ImageChange::Keep);
        }
    };
    let Some(file) = file else {
        return Ok(ImageChange::Describe(alt));
    };
    let path = file.file.path().to_owned();
    let bytes = web::block(move || std::fs::read(path)).await??;
    match web::block(move || media::process_image(&bytes)).await? {
        Ok(image) => Ok(ImageChange::Replace(image, alt)),
        Err(e) => {
            errors.push(FieldError::new(slot.file, e));
            Ok(ImageChange::Keep)
        }
    }
}

/// Stores an image change; `set` points the blog at the new image (or none).
fn apply_change(
    conn: &mut crate::db::DbConnection,
    media_dir: &std::path::Path,
    blog_id: i64,
    user_id: i64,
    current: Option<i64>,
    change: ImageChange,
    set: fn(&mut crate::db::DbConnection, i64, Option<i64>) -> diesel::QueryResult<()>,
) -> Result<(), AppError> {
    match change {
        ImageChange::Keep => {}
        ImageChange::Describe(alt) => {
            if let Some(id) = current {
                media::set_alt_text(conn, id, &alt)?;
            }
        }
        ImageChange::Remove => set(conn, blog_id, None)?,
        ImageChange::Replace(image, alt) => {
            let stored = media::store(conn, media_dir, blog_id, user_id, &image, &alt)?;
            set(conn, blog_id, Some(stored.id))?;
        }
    }
    Ok(())
}

#[derive(MultipartForm)]
struct ProfileForm {
    csrf_token: Option<Text<String>>,
    display_name: Option<Text<String>>,
    role_title: Option<Text<String>>,
    organisation: Option<Text<String>>,
    bio: Option<Text<String>>,
    link_label_0: Option<Text<String>>,
    link_url_0: Option<Text<String>>,
    link_label_1: Option<Text<String>>,
    link_url_1: Option<Text<String>>,
    link_label_2: Option<Text<String>>,
    link_url_2: Option<Text<String>>,
    link_label_3: Option<Text<String>>,
    link_url_3: Option<Text<String>>,
    remove_photo: Option<Text<String>>,
    photo: Option<TempFile>,
    photo_alt: Option<Text<String>>,
    remove_header: Option<Text<String>>,
    header: Option<TempFile>,
    header_alt: Option<Text<String>>,
}

fn text(field: &Option<Text<String>>) -> String {
    field
        .as_ref()
        .map(|t| without_controls(&t.0).trim().to_owned())
        .unwrap_or_default()
}

fn optional(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

async fn save(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: MultipartForm<ProfileForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&text(&form.csrf_token))?;
    let (blog, images) = load(&state, &me, path.into_inner()).await?;
    let form = form.into_inner();
    let links_raw = [
        (text(&form.link_label_0), text(&form.link_url_0)),
        (text(&form.link_label_1), text(&form.link_url_1)),
        (text(&form.link_label_2), text(&form.link_url_2)),
        (text(&form.link_label_3), text(&form.link_url_3)),
    ];
    let values = ProfileValues {
        display_name: text(&form.display_name),
        role_title: text(&form.role_title),
        organisation: text(&form.organisation),
        bio: form
            .bio
            .as_ref()
            .map(|t| without_controls(&t.0).trim_end().to_owned())
            .unwrap_or_default(),
        links: links_raw.to_vec(),
        photo_alt: text(&form.photo_alt),
        header_alt: text(&form.header_alt),
    };
    let mut errors = Vec::new();
    let limit =
        |errors: &mut Vec<FieldError>, field: &'static str, value: &str, name: &str, max: usize| {
            if value.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("{name} must be {max} characters or fewer"),
                ));
            }
        };
    if values.display_name.is_empty() {
        errors.push(FieldError::new("display_name", "Enter the leader's name"));
    }
    limit(
        &mut errors,
        "display_name",
        &values.display_name,
        "Name",
        100,
    );
    limit(&mut errors, "role_title", &values.role_title, "Role", 100);
    limit(
        &mut errors,
        "organisation",
        &values.organisation,
        "Organisation",
        150,
    );
    limit(&mut errors, "bio", &values.bio, "About", 5000);
    let mut links = Vec::new();
    for (i, (label, url)) in links_raw.iter().enumerate() {
        let (label_field, url_field) = (LINK_LABELS[i], LINK_URLS[i]);
        match (label.is_empty(), url.is_empty()) {
            (true, true) => continue,
            (true, false) => errors.push(FieldError::new(
                label_field,
                format!("Enter a name for link {}", i + 1),
            )),
            (false, true) => errors.push(FieldError::new(
                url_field,
                format!("Enter an address for link {}", i + 1),
            )),
            (false, false) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
                    limit(&mut errors, label_field, label, "A link name", 60);
                    links.push(ProfileLink {
                        label: label.clone(),
                        url: u.to_string(),
                    });
                }
                _ => errors.push(FieldError::new(
                    url_field,
                    format!("Enter link {}'s address in full, starting https://", i + 1),
                )),
            },
        }
    }
    // Images are read only when the rest of the form is sound, so a bad field never
    // costs the work of decoding an upload.
    let (photo_change, header_change) = if errors.is_empty() {
        let photo = image_change(
            &PHOTO,
            images.photo.as_ref(),
            form.photo.as_ref(),
            &values.photo_alt,
            text(&form.remove_photo) == "yes",
            &mut errors,
        )
        .await?;
        let header = image_change(
            &HEADER,
            images.header.as_ref(),
            form.header.as_ref(),
            &values.header_alt,
            text(&form.remove_header) == "yes",
            &mut errors,
        )
        .await?;
        (photo, header)
    } else {
        (ImageChange::Keep, ImageChange::Keep)
    };
    if !errors.is_empty() {
        return Ok(html_page_invalid(
            &me.chrome(&state),
            form_page(&blog, &images, &values, &errors, &me.csrf_token),
        ));
    }
    let changes = ProfileChanges {
        display_name: values.display_name.clone(),
        role_title: optional(values.role_title.clone()),
        organisation: optional(values.organisation.clone()),
        bio_html: SafeHtml::from_markdown(&values.bio),
        bio_markdown: values.bio.clone(),
        links: serde_json::to_string(&links).map_err(|e| AppError::internal(e.to_string()))?,
        updated_at: crate::domain::now(),
    };
    let media_dir = state.settings.media_dir();
    let blog_id = blog.id;
    let user_id = me.user.id;
    let (photo_id, header_id) = (
        images.photo.as_ref().map(|m| m.id),
        images.header.as_ref().map(|m| m.id),
    );
    let actor = crate::editorial::Actor::web(&me.user);
    let settings = state.settings.clone();
    let photo_changed = !matches!(photo_change, ImageChange::Keep);
    let header_changed = !matches!(header_change, ImageChange::Keep);
    state
        .db(move |conn| {
            crate::db::write_tx(conn, |conn| {
                use crate::editorial::audit;
                blogs::update_profile(conn, blog_id, &changes)?;
                apply_change(
                    conn,
                    &media_dir,
                    blog_id,
                    user_id,
                    photo_id,
                    photo_change,
                    blogs::set_photo,
                )?;
                apply_change(
                    conn,
                    &media_dir,
                    blog_id,
                    user_id,
                    header_id,
                    header_change,
                    blogs::set_header,
                )?;
                audit::record(
                    conn,
                    &audit::Event::new(&actor, audit::actions::BLOG_PROFILE_CHANGED)
                        .blog(blog_id)
                        .subject(changes.display_name.clone())
                        .detail("photo_changed", photo_changed)
                        .detail("header_changed", header_changed),
                )?;
                crate::federation::outbox::profile_changed(conn, &settings, blog_id)
                    .map_err(|e| AppError::internal(e.to_string()))?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    // Followers' servers are told of the new profile.
    state.jobs_wake.notify_one();
    tracing::info!(blog = %blog.handle, user = %me.user.username, "profile saved");
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/dashboard/@{}?done=profile", blog.handle),
        ))
        .finish())
}
