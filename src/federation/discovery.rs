//! How other servers find us: WebFinger, NodeInfo, host-meta, the instance actor, and
//! the JSON forms of blogs and posts.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ACTIVITY_JSON;
use super::actors;
use super::keys::{self, url};
use super::objects;
use super::protocol::{self, Endpoints, PublicKey};
use crate::domain::blogs::{self, Blog};
use crate::domain::names::Handle;
use crate::domain::posts::{self, Status};
use crate::error::AppError;
use crate::web::AppState;
use crate::web::public::read;

/// Discovery routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/webfinger", read().to(webfinger))
        .route("/.well-known/nodeinfo", read().to(nodeinfo_links))
        .route("/.well-known/host-meta", read().to(host_meta))
        .route("/nodeinfo/2.1", read().to(nodeinfo))
        .route("/actor", read().to(instance_actor))
        .route(INSTANCE_OUTBOX, read().to(instance_outbox));
}

/// The instance actor's outbox: it posts nothing, but Mastodon reads the outbox an actor
/// names, and a 404 there is an error in its logs.
const INSTANCE_OUTBOX: &str = "/actor/outbox";

/// A JSON-LD document with our content type, marked as varying by `Accept` (the same URL
/// serves HTML to browsers).
pub fn activity_json(body: &impl Serialize) -> Result<HttpResponse, AppError> {
    let text = serde_json::to_string(body).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type(ACTIVITY_JSON)
        .insert_header((header::VARY, "Accept"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(text))
}

/// 410 Gone with a Tombstone, for an object that was withdrawn or deleted.
pub fn gone_json(id: url::Url) -> Result<HttpResponse, AppError> {
    let text = serde_json::to_string(&objects::tombstone(id, None, true))
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Gone()
        .content_type(ACTIVITY_JSON)
        .insert_header((header::VARY, "Accept"))
        .body(text))
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

#[derive(Serialize)]
struct Link {
    rel: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    href: String,
}

#[derive(Serialize)]
struct Jrd {
    subject: String,
    aliases: Vec<String>,
    links: Vec<Link>,
}

/// `GET /.well-known/webfinger?resource=acct:handle@domain` (or the blog's URL).
async fn webfinger(
    state: web::Data<AppState>,
    query: web::Query<WebfingerQuery>,
) -> Result<HttpResponse, AppError> {
    let resource = query
        .resource
        .clone()
        .ok_or_else(|| AppError::invalid("resource", "resource is required"))?;
    let settings = state.settings.clone();
    let handle = if let Some(acct) = resource.strip_prefix("acct:") {
        let (name, domain) = acct.rsplit_once('@').ok_or(AppError::NotFound)?;
        if !domain.eq_ignore_ascii_case(&settings.domain()) {
            return Err(AppError::NotFound);
        }
        name.to_owned()
    } else {
        let parsed = url::Url::parse(&resource).map_err(|_| AppError::NotFound)?;
        if !objects::is_local(&settings, &parsed) {
            return Err(AppError::NotFound);
        }
        parsed
            .path()
            .strip_prefix("/@")
            .filter(|h| !h.contains('/'))
            .ok_or(AppError::NotFound)?
            .to_owned()
    };
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    let blog = state
        .db(move |conn| Ok(blogs::find_by_handle(conn, handle.as_str())?))
        .await?
        .ok_or(AppError::NotFound)?;
    let actor = keys::blog_id(&settings, &blog).to_string();
    let jrd = Jrd {
        subject: format!("acct:{}@{}", blog.handle, settings.domain()),
        aliases: vec![actor.clone()],
        links: vec![
            Link {
                rel: "self",
                kind: ACTIVITY_JSON,
                href: actor.clone(),
            },
            Link {
                rel: "http://webfinger.net/rel/profile-page",
                kind: "text/html",
                href: actor,
            },
        ],
    };
    let body = serde_json::to_string(&jrd).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/jrd+json; charset=utf-8")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body))
}

async fn host_meta(state: web::Data<AppState>) -> HttpResponse {
    let template = format!(
        "{}.well-known/webfinger?resource={{uri}}",
        state.settings.base_url
    );
    HttpResponse::Ok()
        .content_type("application/xrd+xml; charset=utf-8")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XRD xmlns=\"http://docs.oasis-open.org/ns/xri/xrd-1.0\"><Link rel=\"lrdd\" template=\"{}\"/></XRD>\n",
            template.replace('&', "&amp;").replace('"', "&quot;")
        ))
}

async fn nodeinfo_links(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(json!({
            "links": [{
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": url(&state.settings, "/nodeinfo/2.1"),
            }]
        }))
}

/// NodeInfo 2.1: what software this is and how much is on it.
async fn nodeinfo(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (blog_count, post_count, active_month, active_half_year) = state
        .db(|conn| {
            use crate::db::schema::{blogs as b, posts as p};
            use diesel::prelude::*;
            let now = crate::domain::now();
            let blog_count: i64 = b::table.count().get_result(conn)?;
            let published = p::table.filter(p::status.eq(Status::Published.as_str()));
            let post_count: i64 = published.count().get_result(conn)?;
            let active = |since: chrono::NaiveDateTime, conn: &mut crate::db::DbConnection| {
                p::table
                    .filter(p::status.eq(Status::Published.as_str()))
                    .filter(p::published_at.ge(since))
                    .select(p::blog_id)
                    .distinct()
                    .load::<i64>(conn)
                    .map(|v| v.len())
            };
            let month = active(now - chrono::Duration::days(30), conn)?;
            let half = active(now - chrono::Duration::days(180), conn)?;
            Ok((blog_count, post_count, month, half))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(
            r#"application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#""#,
        )
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(json!({
            "version": "2.1",
            "software": {
                "name": "rounds",
                "version": env!("CARGO_PKG_VERSION"),
                "repository": state.settings.source_url,
                "homepage": state.settings.source_url,
            },
            "protocols": ["activitypub"],
            "services": { "inbound": [], "outbound": ["atom1.0", "rss2.0"] },
            "openRegistrations": false,
            "usage": {
                "users": {
                    "total": blog_count,
                    "activeMonth": active_month,
                    "activeHalfyear": active_half_year,
                },
                "localPosts": post_count,
            },
            "metadata": { "nodeName": state.settings.instance_name },
        })))
}

/// `GET /actor`: the instance's own actor, whose key signs our fetches.
async fn instance_actor(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    // It is the server, not a person: a browser is sent to the server's home page.
    if let Some(redirect) = super::for_browsers(&req, "/") {
        return Ok(redirect);
    }
    let settings = state.settings.clone();
    let actor = state
        .db(move |conn| {
            keys::instance_actor(conn, &settings).map_err(|e| AppError::internal(e.to_string()))
        })
        .await?;
    let settings = &state.settings;
    activity_json(&json!({
        "@context": protocol::context(),
        "id": actor.id,
        "type": "Application",
        "preferredUsername": settings.domain(),
        "name": settings.instance_name,
        "url": url(settings, "/"),
        "inbox": actor.inbox,
        "outbox": url(settings, INSTANCE_OUTBOX),
        "endpoints": Endpoints { shared_inbox: Some(url(settings, "/inbox")) },
        "publicKey": PublicKey {
            id: actor.key_id(),
            owner: actor.id.clone(),
            public_key_pem: actor.public_key_pem.clone(),
        },
        "manuallyApprovesFollowers": true,
    }))
}

/// `GET /actor/outbox`: empty, with the id it is fetched by.
async fn instance_outbox(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    super::collections::empty_collection(url(&state.settings, INSTANCE_OUTBOX))
}

/// The blog's `Person`, for `GET /@handle` with an ActivityStreams `Accept`.
pub async fn blog_json(state: &AppState, handle: String) -> Result<HttpResponse, AppError> {
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    let settings = state.settings.clone();
    let person = state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            actors::person(conn, &settings, &blog).map_err(|e| AppError::internal(e.to_string()))
        })
        .await?;
    activity_json(&person)
}

/// The post's Note or Article, for `GET /@handle/slug` with an ActivityStreams `Accept`;
/// 410 with a Tombstone once withdrawn. `?v=N` names one of its lives (see
/// [`objects::post_id_in_life`]): an earlier one is gone, whatever the post is now.
pub async fn post_json(
    state: &AppState,
    handle: String,
    slug: String,
    query: &str,
) -> Result<HttpResponse, AppError> {
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    let asked = objects::life_in(query).map_err(|()| AppError::NotFound)?;
    let settings = state.settings.clone();
    enum Found {
        Live(Box<protocol::PostObject>),
        Gone(url::Url),
    }
    let found = state
        .db(move |conn| {
            let blog: Blog =
                blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            let post = posts::find_by_slug(conn, blog.id, &slug)?.ok_or(AppError::NotFound)?;
            let life = asked.unwrap_or(post.republished);
            if post.status() == Status::Draft || life > post.republished {
                return Err(AppError::NotFound);
            }
            let gone = || {
                objects::post_id_in_life(&settings, &blog, &post, life)
                    .map(Found::Gone)
                    .ok_or(AppError::NotFound)
            };
            match post.status() {
                Status::Published if life == post.republished => {
                    let parts = objects::load_parts(conn, blog.clone(), post.clone())
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    let object = objects::post_object(&settings, &parts, true)
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    Ok(Found::Live(Box::new(object)))
                }
                _ => gone(),
            }
        })
        .await?;
    match found {
        Found::Live(object) => activity_json(&object),
        Found::Gone(id) => gone_json(id),
    }
}

/// Whether this request is for the JSON form (see [`super::wants_activity_json`]).
pub fn wants_json(req: &HttpRequest) -> bool {
    super::wants_activity_json(req)
}
