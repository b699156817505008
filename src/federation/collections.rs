//! A blog's collections: outbox (paged), followers, following, featured; each post's
//! replies, likes and shares; and the blog's own answers to replies.
//!
//! They are JSON for servers. A browser (an `Accept` that prefers HTML) is sent to the
//! page that shows the same things: the blog, or the post. `*/*` or no `Accept` gets
//! JSON, as Mastodon answers for its outbox and featured collections (its followers
//! list has a page of its own, which a blog's does not: it is private).

use actix_web::{HttpRequest, HttpResponse, web};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use super::discovery::{activity_json, gone_json};
use super::keys::url;
use super::moderation;
use super::objects;
use super::outbox;
use super::protocol;
use crate::db::schema::{posts as posts_table, reactions, replies};
use crate::domain::blogs::{self, Blog};
use crate::domain::names::{Handle, Slug};
use crate::domain::posts::{self, Listing, Post, Status};
use crate::error::AppError;
use crate::web::AppState;
use crate::web::public::read;

/// Items a page of the outbox holds.
const PAGE_SIZE: u32 = 20;

/// Collection routes (registered before the public pages, whose `/@h/{slug}` would
/// otherwise take them).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}/outbox", read().to(outbox_collection))
        .route("/@{handle}/followers", read().to(followers))
        .route("/@{handle}/following", read().to(following))
        .route("/@{handle}/featured", read().to(featured))
        .route("/@{handle}/replies/{id}", read().to(answer))
        .route(
            "/@{handle}/{slug}/{collection:replies|likes|shares}",
            read().to(post_collection),
        );
}

async fn blog(state: &AppState, handle: String) -> Result<Blog, AppError> {
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    state
        .db(move |conn| blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound))
        .await
}

/// An empty `OrderedCollection` at `id`.
pub fn empty_collection(id: url::Url) -> Result<HttpResponse, AppError> {
    activity_json(&json!({
        "@context": protocol::context(),
        "id": id,
        "type": "OrderedCollection",
        "totalItems": 0,
        "orderedItems": [],
    }))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u32>,
}

async fn outbox_collection(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let blog = blog(&state, path.into_inner()).await?;
    if let Some(redirect) = super::for_browsers(&req, &blog.path()) {
        return Ok(redirect);
    }
    let settings = state.settings.clone();
    let id = url(&settings, &format!("{}/outbox", blog.path()));
    let page = query.page;
    let blog_id = blog.id;
    let (items, total) = state
        .db(move |conn| {
            let listing = Listing {
                blog_id: Some(blog_id),
                tag: None,
            };
            let Some(page) = page else {
                let (_, total) = posts::published(conn, &listing, 1, 1)?;
                return Ok((Vec::new(), total));
            };
            if page == 0 {
                return Err(AppError::NotFound);
            }
            let (list, total) = posts::published(conn, &listing, page, PAGE_SIZE)?;
            let mut items = Vec::with_capacity(list.len());
            for post in list {
                let parts = objects::load_parts(conn, blog.clone(), post)
                    .map_err(|e| AppError::internal(e.to_string()))?;
                let object = objects::post_object(&settings, &parts, false)
                    .map_err(|e| AppError::internal(e.to_string()))?;
                let mut create_id = object.id.clone();
                create_id.set_fragment(Some("create"));
                items.push(json!({
                    "id": create_id,
                    "type": "Create",
                    "actor": object.attributed_to,
                    "published": object.published,
                    "to": object.to,
                    "cc": object.cc,
                    "object": object,
                }));
            }
            Ok((items, total))
        })
        .await?;
    let document = match page {
        None => json!({
            "@context": protocol::context(),
            "id": id,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": format!("{id}?page=1"),
        }),
        Some(page) => {
            let shown = i64::from(page) * i64::from(PAGE_SIZE);
            let mut document = json!({
                "@context": protocol::context(),
                "id": format!("{id}?page={page}"),
                "type": "OrderedCollectionPage",
                "partOf": id,
                "totalItems": total,
                "orderedItems": items,
            });
            if shown < total {
                document["next"] = Value::String(format!("{id}?page={}", page + 1));
            }
            if page > 1 {
                document["prev"] = Value::String(format!("{id}?page={}", page - 1));
            }
            document
        }
    };
    activity_json(&document)
}

/// The followers collection: its size only. Who follows a leader is theirs to know, not
/// the world's (Mastodon lets accounts hide the list the same way).
async fn followers(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let blog = blog(&state, path.into_inner()).await?;
    if let Some(redirect) = super::for_browsers(&req, &blog.path()) {
        return Ok(redirect);
    }
    let blog_id = blog.id;
    let total = state
        .db(move |conn| Ok(moderation::follower_count(conn, blog_id)?))
        .await?;
    activity_json(&json!({
        "@context": protocol::context(),
        "id": url(&state.settings, &format!("{}/followers", blog.path())),
        "type": "OrderedCollection",
        "totalItems": total,
    }))
}

/// Blogs follow nobody.
async fn following(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let blog = blog(&state, path.into_inner()).await?;
    if let Some(redirect) = super::for_browsers(&req, &blog.path()) {
        return Ok(redirect);
    }
    empty_collection(url(&state.settings, &format!("{}/following", blog.path())))
}

/// Pinned posts, newest pin first.
async fn featured(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let blog = blog(&state, path.into_inner()).await?;
    if let Some(redirect) = super::for_browsers(&req, &blog.path()) {
        return Ok(redirect);
    }
    let settings = state.settings.clone();
    let for_query = blog.clone();
    let items = state
        .db(move |conn| {
            let pinned: Vec<Post> = posts_table::table
                .filter(posts_table::blog_id.eq(for_query.id))
                .filter(posts_table::status.eq(Status::Published.as_str()))
                .filter(posts_table::pinned_at.is_not_null())
                .order(posts_table::pinned_at.desc())
                .limit(5)
                .select(Post::as_select())
                .load(conn)?;
            let mut items = Vec::with_capacity(pinned.len());
            for post in pinned {
                let parts = objects::load_parts(conn, for_query.clone(), post)
                    .map_err(|e| AppError::internal(e.to_string()))?;
                items.push(
                    objects::post_object(&settings, &parts, false)
                        .map_err(|e| AppError::internal(e.to_string()))?,
                );
            }
            Ok(items)
        })
        .await?;
    activity_json(&json!({
        "@context": protocol::context(),
        "id": url(&state.settings, &format!("{}/featured", blog.path())),
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    }))
}

/// A post's `replies`, `likes` or `shares` collection, with its total (replies list the
/// approved ones).
async fn post_collection(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (handle, slug, collection) = path.into_inner();
    if !matches!(collection.as_str(), "replies" | "likes" | "shares") {
        return Err(AppError::NotFound);
    }
    let slug = Slug::parse(&slug).map_err(|_| AppError::NotFound)?;
    let blog = blog(&state, handle).await?;
    let blog_id = blog.id;
    let kind = collection.clone();
    let (post, total, items) = state
        .db(move |conn| {
            let post =
                posts::find_by_slug(conn, blog_id, slug.as_str())?.ok_or(AppError::NotFound)?;
            if post.status() != Status::Published {
                return Err(AppError::Gone);
            }
            let (total, items): (i64, Vec<String>) = match kind.as_str() {
                "replies" => {
                    let ids: Vec<String> = replies::table
                        .filter(replies::post_id.eq(post.id))
                        .filter(moderation::shown_replies())
                        .order(replies::published_at.asc())
                        .select(replies::ap_id)
                        .load(conn)?;
                    (i64::try_from(ids.len()).unwrap_or(i64::MAX), ids)
                }
                other => {
                    let kind = if other == "likes" { "like" } else { "announce" };
                    let total = reactions::table
                        .filter(reactions::post_id.eq(post.id))
                        .filter(reactions::kind.eq(kind))
                        .count()
                        .get_result(conn)?;
                    (total, Vec::new())
                }
            };
            Ok((post, total, items))
        })
        .await?;
    let post_url = objects::post_page(&state.settings, &blog, &post).ok_or(AppError::NotFound)?;
    if let Some(redirect) = super::for_browsers(&req, post_url.path()) {
        return Ok(redirect);
    }
    let mut document = json!({
        "@context": protocol::context(),
        "id": format!("{post_url}/{collection}"),
        "type": "Collection",
        "totalItems": total,
    });
    if collection == "replies" {
        document["items"] = json!(items);
    }
    activity_json(&document)
}

/// One of the blog's answers to a reply, as a Note; a browser is sent to where it shows
/// (under its post, or the blog's page for an answer to a mention).
async fn answer(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let (handle, id) = path.into_inner();
    let blog = blog(&state, handle).await?;
    let blog_id = blog.id;
    let (answer, author, post) = state
        .db(move |conn| {
            let answer = moderation::reply_in_blog(conn, blog_id, id)?
                .filter(|r| r.actor_id.is_none())
                .ok_or(AppError::NotFound)?;
            let parent_author = moderation::answered_account(conn, blog_id, &answer)?;
            let post = match answer.post_id {
                Some(post) => posts::find(conn, post)?,
                None => None,
            };
            Ok((answer, parent_author, post))
        })
        .await?;
    let page = post
        .filter(|p| p.status() == Status::Published && answer.is_shown())
        .and_then(|p| p.path(&blog.handle))
        .map_or_else(|| blog.path(), |path| format!("{path}#reply-{}", answer.id));
    if let Some(redirect) = super::for_browsers(&req, &page) {
        return Ok(redirect);
    }
    if !answer.is_shown() {
        let id = url::Url::parse(&answer.ap_id).map_err(|_| AppError::NotFound)?;
        return gone_json(id);
    }
    let note = outbox::answer_object(&state.settings, &blog, &answer, author.as_ref(), true)
        .map_err(|e| AppError::internal(e.to_string()))?;
    activity_json(&note)
}
