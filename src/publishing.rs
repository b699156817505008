//! Saving, publishing and withdrawing posts, as the editor, the review page, the
//! scheduler and the command line do it. Each is one transaction, so whatever a change
//! makes due elsewhere (deliveries to followers, emails to subscribers, a scheduled
//! publish, an audit entry) is queued with it or not at all.
//!
//! The editorial rules live here, so every door obeys the same ones:
//!
//! * every save makes a revision; a save that names an older revision than the latest
//!   is merged three-way with what landed in between, or comes back as a [`Conflict`];
//! * an edit after approval sends the post back to review;
//! * under a blog's owner sign-off rule, a post goes out only when the owner publishes
//!   it or the exact approved revision (compared by hash) is published;
//! * nothing goes public while the publishing freeze is in force.
//!
//! Everything that makes a post public passes through [`go_live`]; withdrawing through
//! [`unpublish`] and [`delete`]. Side effects of those belong in the hooks marked
//! `HOOK` below.

use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::{DbConnection, write_tx};
use crate::domain::blogs::{self, Blog};
use crate::domain::posts::{self, Post, PostInput, Status};
use crate::editorial::audit::{self, actions};
use crate::editorial::merge::{self, Merged};
use crate::editorial::revisions::{self, Content, Kind, NewRevision, Revision};
use crate::editorial::roles::{self, Standing};
use crate::editorial::schedule::{self, ScheduledPublish};
use crate::editorial::workflow::{self, Approval, Stage, Workflow};
use crate::editorial::{Actor, freeze};
use crate::error::AppError;
use crate::federation::mentions::{self, Mentions};
use crate::federation::outbox::{self, Change};

/// What to save.
pub struct SaveRequest<'a> {
    /// The blog.
    pub blog: &'a Blog,
    /// The post, or `None` to start one.
    pub post: Option<&'a Post>,
    /// Who is saving.
    pub actor: &'a Actor,
    /// The content, checked.
    pub input: &'a PostInput,
    /// The revision the saver's editor showed (`None`: the latest, or a new post).
    pub base_revision: Option<i64>,
    /// How the save came about.
    pub kind: Kind,
    /// Make this content public now.
    pub publish: bool,
    /// The accounts the content mentions, looked up beforehand (see
    /// [`crate::federation::mentions::resolve`]); what is not here stays plain text.
    pub mentions: &'a Mentions,
}

/// What a save did.
// Made once per save and matched at once, never stored: boxing the common case would
// buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Saved {
    /// Saved (or nothing had changed).
    Saved {
        /// The post as it is now.
        post: Post,
        /// Its latest revision.
        revision: Revision,
        /// People whose changes, saved in the meantime, were merged in.
        merged_with: Vec<String>,
        /// Whether readers now see this content.
        live: bool,
        /// Whether the content was the same as the latest revision (no new revision).
        unchanged: bool,
    },
    /// An autosave based on an older revision: nothing saved; the person saves with the
    /// button to merge.
    Stale {
        /// The latest revision.
        head: Revision,
    },
    /// Someone else changed the same words: nothing saved.
    Conflict(Box<Conflict>),
}

/// Two saves that changed the same words differently.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The latest revision (saved first).
    pub theirs: Revision,
    /// The revision both started from, if it is still kept.
    pub base: Option<Revision>,
    /// What the person saving now submitted.
    pub ours: Content,
    /// Everything merged, each clash settled the saver's way, ready to edit.
    pub proposal: Content,
    /// The clashing passages by field: (field, base, ours, theirs).
    pub clashes: Vec<(&'static str, String, String, String)>,
}

fn standing_of(conn: &mut DbConnection, blog_id: i64, actor: &Actor) -> Result<Standing, AppError> {
    let user_id = actor.user_id.ok_or(AppError::Forbidden)?;
    Ok(roles::standing_of(conn, blog_id, user_id, actor.is_admin)?)
}

/// Saves a new or existing post's content as a revision and, if asked (or if the saver
/// may change a published post directly), makes it public.
pub fn save(conn: &mut DbConnection, request: &SaveRequest<'_>) -> Result<Saved, AppError> {
    let ours = Content::from_input(request.input);
    // A refusal (to publish, say) rolls the whole save back: nothing half-done stays.
    write_tx(conn, |conn| {
        let standing = standing_of(conn, request.blog.id, request.actor)?;
        match request.post {
            None => create(conn, request, &standing, &ours),
            Some(post) => update(conn, request, &standing, post.id, ours.clone()),
        }
    })
}

fn create(
    conn: &mut DbConnection,
    request: &SaveRequest<'_>,
    standing: &Standing,
    ours: &Content,
) -> Result<Saved, AppError> {
    if !standing.is_member() {
        return Err(AppError::Forbidden);
    }
    let post = posts::create_draft(conn, request.blog.id, request.actor.user_id, request.input)?;
    let revision = revisions::append(
        conn,
        None,
        &NewRevision {
            post_id: post.id,
            author_id: request.actor.user_id,
            author_name: &request.actor.name,
            kind: request.kind,
            content: ours,
            based_on: None,
            change_summary: "First version".to_owned(),
        },
    )?;
    let mut flow = workflow::get(conn, &post)?;
    flow.head_revision_id = Some(revision.id);
    workflow::save(conn, &flow)?;
    if request.publish {
        let post = publish_now(
            conn,
            request.blog,
            &post,
            &revision,
            flow,
            standing,
            (request.actor, request.mentions),
        )?;
        return Ok(Saved::Saved {
            post,
            revision,
            merged_with: Vec::new(),
            live: true,
            unchanged: false,
        });
    }
    Ok(Saved::Saved {
        post,
        revision,
        merged_with: Vec::new(),
        live: false,
        unchanged: false,
    })
}

fn update(
    conn: &mut DbConnection,
    request: &SaveRequest<'_>,
    standing: &Standing,
    post_id: i64,
    mut ours: Content,
) -> Result<Saved, AppError> {
    let post = workflow::lock_post(conn, post_id)?.ok_or(AppError::NotFound)?;
    if post.status() == Status::Deleted {
        return Err(AppError::Gone);
    }
    let mut flow = workflow::get(conn, &post)?;
    if !standing.can_edit(&post, flow.stage()) {
        return Err(AppError::Forbidden);
    }
    let head = revisions::ensure_head(conn, &post)?;
    let mut merged_with = Vec::new();
    if let Some(base_id) = request.base_revision
        && base_id != head.id
    {
        if request.kind == Kind::Autosave {
            return Ok(Saved::Stale { head });
        }
        // Merged even when the saves in between are the same person's (another tab of
        // theirs): the editor's script waits for its own autosave before a save, so it
        // never races itself.
        let base = base_revision(conn, post.id, base_id)?;
        let result = merge_content(
            base.as_ref().map(Revision::content).as_ref(),
            &ours,
            &head.content(),
        );
        if !result.clashes.is_empty() {
            return Ok(Saved::Conflict(Box::new(Conflict {
                theirs: head,
                base,
                ours,
                proposal: result.content,
                clashes: result.clashes,
            })));
        }
        ours = result.content;
        merged_with = authors_since(conn, post.id, base_id, request.actor.user_id)?;
    }

    // Someone who may publish directly changes a published post in place with a
    // plain save, as before sign-off existed; autosaves and restores never go out.
    // During a publishing freeze such a save keeps the change as pending instead of
    // refusing it, so work can go on; an explicit publish is still refused.
    let live_now = request.publish
        || (post.status() == Status::Published
            && !matches!(request.kind, Kind::Autosave | Kind::Restore)
            && standing.can_publish_directly()
            && freeze::current(conn)?.is_none());
    if ours == head.content() {
        if live_now && flow.live_revision_id != Some(head.id) {
            let post = publish_now(
                conn,
                request.blog,
                &post,
                &head,
                flow,
                standing,
                (request.actor, request.mentions),
            )?;
            return Ok(Saved::Saved {
                post,
                revision: head,
                merged_with,
                live: true,
                unchanged: true,
            });
        }
        return Ok(Saved::Saved {
            post,
            live: flow.live_revision_id == Some(head.id),
            revision: head,
            merged_with,
            unchanged: true,
        });
    }

    // A person's autosaves one after another show in history as one.
    let protected = [
        flow.live_revision_id,
        flow.scheduled_revision_id,
        approved_revision(conn, &flow)?,
    ];
    if request.kind == Kind::Autosave
        && head.kind() == Kind::Autosave
        && head.author_id == request.actor.user_id
        && !protected.contains(&Some(head.id))
    {
        revisions::mark_coalesced(conn, head.id)?;
    }
    let mut summary = revisions::describe_change(Some(&head.content()), &ours);
    if !merged_with.is_empty() {
        summary.push_str(&format!(
            " (merged with changes by {})",
            merged_with.join(", ")
        ));
    }
    let kind = if merged_with.is_empty() {
        request.kind
    } else {
        Kind::Merge
    };
    let revision = revisions::append(
        conn,
        Some(&head),
        &NewRevision {
            post_id: post.id,
            author_id: request.actor.user_id,
            author_name: &request.actor.name,
            kind,
            content: &ours,
            based_on: request.base_revision.or(Some(head.id)),
            change_summary: summary,
        },
    )?;
    flow.head_revision_id = Some(revision.id);
    after_edit(conn, &post, &mut flow, &revision, request.actor)?;

    // Readers keep seeing the live version until the change goes out; drafts carry
    // their latest content so lists show it.
    let post = if post.status() == Status::Published {
        post
    } else {
        posts::update_content(conn, &post, &ours.to_input())?
    };
    if request.kind == Kind::Restore {
        audit::record(
            conn,
            &audit::Event::new(request.actor, actions::RESTORED)
                .blog(post.blog_id)
                .post(post.id)
                .subject(post.display_title())
                .detail("revision", revision.number)
                .detail("restored_from", request.base_revision),
        )?;
    }
    if live_now {
        let post = publish_now(
            conn,
            request.blog,
            &post,
            &revision,
            flow,
            standing,
            (request.actor, request.mentions),
        )?;
        return Ok(Saved::Saved {
            post,
            revision,
            merged_with,
            live: true,
            unchanged: false,
        });
    }
    workflow::save(conn, &flow)?;
    Ok(Saved::Saved {
        post,
        revision,
        merged_with,
        live: false,
        unchanged: false,
    })
}

/// The revision a save started from, or the nearest earlier one still kept.
fn base_revision(
    conn: &mut DbConnection,
    post_id: i64,
    id: i64,
) -> Result<Option<Revision>, AppError> {
    use crate::db::schema::post_revisions;
    Ok(post_revisions::table
        .filter(post_revisions::post_id.eq(post_id))
        .filter(post_revisions::id.le(id))
        .order(post_revisions::id.desc())
        .select(Revision::as_select())
        .first(conn)
        .optional()?)
}

/// Who saved revisions after `base_id`, other than `me`, by name.
fn authors_since(
    conn: &mut DbConnection,
    post_id: i64,
    base_id: i64,
    me: Option<i64>,
) -> Result<Vec<String>, AppError> {
    use crate::db::schema::post_revisions;
    let rows: Vec<(Option<i64>, String)> = post_revisions::table
        .filter(post_revisions::post_id.eq(post_id))
        .filter(post_revisions::id.gt(base_id))
        .order(post_revisions::id.asc())
        .select((post_revisions::author_id, post_revisions::author_name))
        .load(conn)?;
    let mut names: Vec<String> = Vec::new();
    for (id, name) in rows {
        if (id.is_none() || id != me) && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A merge of every field.
struct ContentMerge {
    content: Content,
    clashes: Vec<(&'static str, String, String, String)>,
}

fn merge_content(base: Option<&Content>, ours: &Content, theirs: &Content) -> ContentMerge {
    let empty = Content::default();
    let base = base.unwrap_or(&empty);
    let mut clashes = Vec::new();
    let mut text = |field: &'static str, b: &str, o: &str, t: &str| -> String {
        let merged: Merged = merge::merge(b, o, t);
        for (cb, co, ct) in merged.conflicts() {
            clashes.push((field, cb.to_owned(), co.to_owned(), ct.to_owned()));
        }
        merged.with_ours()
    };
    let optional = |s: String| {
        let trimmed = s.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    };
    let title = text(
        "title",
        base.title.as_deref().unwrap_or(""),
        ours.title.as_deref().unwrap_or(""),
        theirs.title.as_deref().unwrap_or(""),
    );
    let summary = text(
        "summary",
        base.summary.as_deref().unwrap_or(""),
        ours.summary.as_deref().unwrap_or(""),
        theirs.summary.as_deref().unwrap_or(""),
    );
    let content_warning = text(
        "content_warning",
        base.content_warning.as_deref().unwrap_or(""),
        ours.content_warning.as_deref().unwrap_or(""),
        theirs.content_warning.as_deref().unwrap_or(""),
    );
    let body = text("body", &base.body, &ours.body, &theirs.body);
    let slug = if ours.slug == base.slug {
        theirs.slug.clone()
    } else {
        ours.slug.clone()
    };
    ContentMerge {
        content: Content {
            title: optional(title),
            summary: optional(summary),
            body,
            tags: merge::merge_tags(&base.tags, &ours.tags, &theirs.tags),
            slug,
            content_warning: optional(content_warning),
        },
        clashes,
    }
}

fn approved_revision(conn: &mut DbConnection, flow: &Workflow) -> Result<Option<i64>, AppError> {
    Ok(match flow.approval_id {
        Some(id) => workflow::approval(conn, id)?.map(|a| a.revision_id),
        None => None,
    })
}

/// The approval in force if it covers exactly this revision's content.
fn matching_approval(
    conn: &mut DbConnection,
    flow: &Workflow,
    revision: &Revision,
) -> Result<Option<Approval>, AppError> {
    Ok(match flow.approval_id {
        Some(id) => workflow::approval(conn, id)?
            .filter(|a| a.content_hash == revision.content_hash && a.post_id == revision.post_id),
        None => None,
    })
}

/// Moves the stage after a new revision: an edit after approval goes back to review
/// (and off the schedule); a published post's new words are a draft until they go out.
fn after_edit(
    conn: &mut DbConnection,
    post: &Post,
    flow: &mut Workflow,
    revision: &Revision,
    actor: &Actor,
) -> Result<(), AppError> {
    match flow.stage() {
        Stage::Approved | Stage::Scheduled => {
            if matching_approval(conn, flow, revision)?.is_none() {
                let was_scheduled = flow.stage() == Stage::Scheduled;
                flow.set_stage(Stage::InReview);
                flow.clear_schedule();
                audit::record(
                    conn,
                    &audit::Event::new(actor, actions::RETURNED_TO_REVIEW)
                        .blog(post.blog_id)
                        .post(post.id)
                        .subject(post.display_title())
                        .detail("revision", revision.number)
                        .detail("schedule_cancelled", was_scheduled),
                )?;
            }
        }
        Stage::Published => flow.set_stage(Stage::Draft),
        Stage::Draft | Stage::InReview => {}
    }
    Ok(())
}

/// Publishes `revision` now for `actor`, if they may: checks, sign-off, freeze. The
/// actor travels with the accounts the text mentions, as [`go_live`] takes them.
fn publish_now(
    conn: &mut DbConnection,
    blog: &Blog,
    post: &Post,
    revision: &Revision,
    mut flow: Workflow,
    standing: &Standing,
    (actor, mentions): (&Actor, &Mentions),
) -> Result<Post, AppError> {
    let approval = authorise(conn, post, &flow, revision, standing, actor)?;
    flow.approval_id = Some(approval.id);
    go_live(
        conn,
        blog,
        post,
        revision,
        flow,
        &approval,
        (actor, mentions),
    )
}

/// The approval that lets `actor` publish `revision`: the one in force if it covers
/// exactly this content, or a new one when the actor publishes directly (the owner's
/// publishing is their sign-off).
fn authorise(
    conn: &mut DbConnection,
    post: &Post,
    flow: &Workflow,
    revision: &Revision,
    standing: &Standing,
    actor: &Actor,
) -> Result<Approval, AppError> {
    if !standing.can_publish_approved() {
        return Err(AppError::Forbidden);
    }
    if let Some(approval) = matching_approval(conn, flow, revision)? {
        return Ok(approval);
    }
    if standing.can_publish_directly() {
        let kind = if standing.is_owner() {
            "published_by_owner"
        } else {
            "published_without_sign_off"
        };
        return Ok(workflow::record_approval(
            conn,
            post.id,
            revision.id,
            (actor.user_id, &actor.name),
            &revision.content_hash,
            kind,
        )?);
    }
    Err(AppError::Conflict(
        "this version has not been signed off: only the exact revision the owner approved can go out under their name. Submit it for sign-off".into(),
    ))
}

/// The one place a post becomes public, or its public content changes. `actor` makes
/// it so; `mentions` are the accounts its text mentions, looked up beforehand.
fn go_live(
    conn: &mut DbConnection,
    blog: &Blog,
    post: &Post,
    revision: &Revision,
    mut flow: Workflow,
    approval: &Approval,
    (actor, mentions): (&Actor, &Mentions),
) -> Result<Post, AppError> {
    freeze::ensure_not_frozen(conn)?;
    let input = revision.content().to_input();
    let problems = input.publication_problems();
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let was_public = post.status() == Status::Published;
    let changed = Content::from_input(&input) != Content::of_post(conn, post)?;
    let mut live = if changed {
        posts::update_content(conn, post, &input)?
    } else {
        post.clone()
    };
    if !was_public {
        live = posts::publish(conn, &live)?;
    }
    // The accounts the text mentions are recorded with it, and linked in its HTML.
    let active = mentions::record(conn, blog, live.id, &live.body_markdown, mentions)?;
    let html = mentions::render(&live.body_markdown, &active);
    let relinked = html != live.body_html;
    if relinked {
        live = posts::set_body_html(conn, &live, &html)?;
    }
    flow.set_stage(Stage::Published);
    flow.live_revision_id = Some(revision.id);
    flow.approval_id = Some(approval.id);
    flow.clear_schedule();
    workflow::save(conn, &flow)?;
    let path = live.path(&blog.handle);
    audit::record(
        conn,
        &audit::Event::new(
            actor,
            if was_public {
                actions::UPDATED
            } else {
                actions::PUBLISHED
            },
        )
        .blog(blog.id)
        .post(live.id)
        .subject(live.display_title())
        .detail("revision", revision.number)
        .detail("content_hash", &revision.content_hash)
        .detail("signed_off_by", &approval.approver_name)
        .detail("path", path),
    )?;
    // HOOK: the post went public (`was_public` false) or its public content changed:
    // what that makes due is queued here, in this transaction.
    if !was_public {
        outbox::post_changed(conn, &live, Change::Published)?;
        crate::newsletter::sending::post_published(conn, &live)?;
    } else if changed || relinked {
        outbox::post_changed(conn, &live, Change::Edited)?;
    }
    Ok(live)
}

/// Publishes the post's latest revision now (the review page's "Publish now"), with the
/// accounts its text mentions looked up beforehand.
pub fn publish(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    actor: &Actor,
    seen_revision: Option<i64>,
    mentions: &Mentions,
) -> Result<Post, AppError> {
    write_tx(conn, |conn| {
        let standing = standing_of(conn, blog.id, actor)?;
        let post = workflow::lock_post(conn, post_id)?.ok_or(AppError::NotFound)?;
        if post.status() == Status::Deleted {
            return Err(AppError::Gone);
        }
        let flow = workflow::get(conn, &post)?;
        let head = revisions::ensure_head(conn, &post)?;
        ensure_seen(&head, seen_revision)?;
        if flow.live_revision_id == Some(head.id) && post.status() == Status::Published {
            return Ok(post);
        }
        publish_now(conn, blog, &post, &head, flow, &standing, (actor, mentions))
    })
}

/// Refuses when the post changed since the person looked at it.
fn ensure_seen(head: &Revision, seen: Option<i64>) -> Result<(), AppError> {
    match seen {
        Some(id) if id != head.id => Err(AppError::Conflict(format!(
            "the post changed since you opened it (it is now at revision {}): look at the latest version and try again",
            head.number
        ))),
        _ => Ok(()),
    }
}

/// Submits the latest revision for sign-off; emails the owner and their delegate.
pub fn submit(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    actor: &Actor,
    review_url: &str,
) -> Result<(), AppError> {
    write_tx(conn, |conn| {
        let standing = standing_of(conn, blog.id, actor)?;
        let post = workflow::lock_post(conn, post_id)?.ok_or(AppError::NotFound)?;
        let mut flow = workflow::get(conn, &post)?;
        if !standing.can_submit(&post, flow.stage()) {
            return Err(AppError::Forbidden);
        }
        if flow.stage() != Stage::Draft {
            return Err(AppError::Conflict(format!(
                "this post is {}, not a draft",
                flow.stage().label().to_lowercase()
            )));
        }
        let head = revisions::ensure_head(conn, &post)?;
        flow.head_revision_id = Some(head.id);
        flow.set_stage(Stage::InReview);
        flow.submitted_by = actor.user_id;
        flow.submitted_at = Some(crate::domain::now());
        workflow::save(conn, &flow)?;
        let rules = roles::rules_of(conn, blog.id)?;
        let mut approvers: Vec<i64> = blogs::owner_of(conn, blog.id)?.into_iter().collect();
        approvers.extend(rules.delegate_id);
        for approver in approvers {
            if Some(approver) == actor.user_id {
                continue;
            }
            let email: Option<String> = users::table
                .find(approver)
                .select(users::email)
                .first(conn)
                .optional()?;
            if let Some(to) = email {
                let message = crate::mail::Email {
                    to,
                    subject: format!("For your sign-off: {}", post.display_title()),
                    text: format!(
                        "{} submitted “{}” on the {} blog for sign-off.\n\nReview it: {review_url}\n",
                        actor.name,
                        post.display_title(),
                        blog.display_name
                    ),
                    html: None,
                    reply_to: None,
                    bulk: None,
                };
                let job = message
                    .job(format!("submitted:{}:{}:{approver}", post.id, head.id))
                    .map_err(|e| AppError::internal(e.to_string()))?;
                crate::jobs::enqueue(conn, &job)?;
            }
        }
        audit::record(
            conn,
            &audit::Event::new(actor, actions::SUBMITTED)
                .blog(blog.id)
                .post(post.id)
                .subject(post.display_title())
                .detail("revision", head.number),
        )?;
        Ok(())
    })
}

/// Approves the latest revision, which must be the one the approver looked at.
pub fn approve(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    actor: &Actor,
    seen_revision: i64,
) -> Result<Approval, AppError> {
    write_tx(conn, |conn| {
        let standing = standing_of(conn, blog.id, actor)?;
        if !standing.can_approve() {
            return Err(AppError::Forbidden);
        }
        let post = workflow::lock_post(conn, post_id)?.ok_or(AppError::NotFound)?;
        if post.status() == Status::Deleted {
            return Err(AppError::Gone);
        }
        let mut flow = workflow::get(conn, &post)?;
        let head = revisions::ensure_head(conn, &post)?;
        ensure_seen(&head, Some(seen_revision))?;
        if matches!(
            flow.stage(),
            Stage::Published | Stage::Scheduled | Stage::Approved
        ) {
            return Err(AppError::Conflict(format!(
                "this post is {} already",
                flow.stage().label().to_lowercase()
            )));
        }
        let problems = head.content().to_input().publication_problems();
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        let approval = workflow::record_approval(
            conn,
            post.id,
            head.id,
            (actor.user_id, &actor.name),
            &head.content_hash,
            "approved",
        )?;
        flow.head_revision_id = Some(head.id);
        flow.approval_id = Some(approval.id);
        flow.set_stage(Stage::Approved);
        workflow::save(conn, &flow)?;
        audit::record(
            conn,
            &audit::Event::new(actor, actions::APPROVED)
                .blog(blog.id)
                .post(post.id)
                .subject(post.display_title())
                .detail("revision", head.number)
                .detail("content_hash", &head.content_hash),
        )?;
        Ok(approval)
    })
}

/// Schedules the latest revision to go out at `at` (UTC). The owner may schedule what
/// they have not approved (scheduling is their sign-off); editors only what was.
pub fn schedule(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    actor: &Actor,
    seen_revision: Option<i64>,
    at: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    if at <= crate::domain::now() {
        return Err(AppError::invalid(
            "schedule_day",
            "The time must be in the future",
        ));
    }
    write_tx(conn, |conn| {
        let standing = standing_of(conn, blog.id, actor)?;
        let post = workflow::lock_post(conn, post_id)?.ok_or(AppError::NotFound)?;
        if post.status() == Status::Deleted {
            return Err(AppError::Gone);
        }
        let mut flow = workflow::get(conn, &post)?;
        let head = revisions::ensure_head(conn, &post)?;
        ensure_seen(&head, seen_revision)?;
        if flow.stage() == Stage::Published {
            return Err(AppError::Conflict(
                "this version is published already".into(),
            ));
        }
        let problems = head.content().to_input().publication_problems();
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        let approval = match matching_approval(conn, &flow, &head)? {
            Some(approval) => approval,
            None if standing.can_publish_directly() => workflow::record_approval(
                conn,
                post.id,
                head.id,
                (actor.user_id, &actor.name),
                &head.content_hash,
                if standing.is_owner() {
                    "approved"
                } else {
                    "published_without_sign_off"
                },
            )?,
            None if standing.can_publish_approved() => {
                return Err(AppError::Conflict(
                    "only an approved post can be scheduled: submit it for sign-off first".into(),
                ));
            }
            None => return Err(AppError::Forbidden),
        };
        if !standing.can_publish_approved() {
            return Err(AppError::Forbidden);
        }
        flow.head_revision_id = Some(head.id);
        flow.approval_id = Some(approval.id);
        flow.set_stage(Stage::Scheduled);
        flow.scheduled_for = Some(at);
        flow.scheduled_revision_id = Some(head.id);
        flow.scheduled_by = actor.user_id;
        flow.held_at = None;
        workflow::save(conn, &flow)?;
        schedule::enqueue(conn, post.id, head.id, at, None)?;
        audit::record(
            conn,
            &audit::Event::new(actor, actions::SCHEDULED)
                .blog(blog.id)
                .post(post.id)
                .subject(post.display_title())
                .detail("revision", head.number)
                .detail("at_utc", at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .detail("at_london", schedule::format_london(at)),
        )?;
        Ok(())
    })
}

/// Takes a post off its schedule (it stays approved).
pub fn cancel_schedule(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    actor: &Actor,
) -> Result<(), AppError> {
    write_tx(conn, |conn| {
        let standing = standing_of(conn, blog.id, actor)?;
        if !standing.can_publish_approved() {
            return Err(AppError::Forbidden);
        }
        let post = workflow::lock_post(conn, post_id)?.ok_or(AppError::NotFound)?;
        let mut flow = workflow::get(conn, &post)?;
        if flow.stage() != Stage::Scheduled {
            return Err(AppError::Conflict("this post is not scheduled".into()));
        }
        flow.set_stage(Stage::Approved);
        flow.clear_schedule();
        workflow::save(conn, &flow)?;
        audit::record(
            conn,
            &audit::Event::new(actor, actions::SCHEDULE_CANCELLED)
                .blog(blog.id)
                .post(post.id)
                .subject(post.display_title()),
        )?;
        Ok(())
    })
}

/// What a scheduled-publish job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledOutcome {
    /// The post went out.
    Published,
    /// The schedule changed since the job was queued: nothing to do.
    Stale,
    /// A freeze is in force: held until it is lifted.
    Held,
}

/// Publishes a scheduled post from its job, if it is still scheduled for exactly this
/// revision and time; `mentions` are the accounts the revision mentions, looked up
/// beforehand.
pub fn publish_scheduled(
    conn: &mut DbConnection,
    job: &ScheduledPublish,
    mentions: &Mentions,
) -> Result<ScheduledOutcome, AppError> {
    write_tx(conn, |conn| {
        let Some(post) = workflow::lock_post(conn, job.post_id)? else {
            return Ok(ScheduledOutcome::Stale);
        };
        let flow = workflow::get(conn, &post)?;
        if flow.stage() != Stage::Scheduled
            || flow.scheduled_revision_id != Some(job.revision_id)
            || flow.scheduled_for != Some(job.scheduled_for)
            || post.status() == Status::Deleted
        {
            return Ok(ScheduledOutcome::Stale);
        }
        let scheduler = match flow.scheduled_by {
            Some(id) => users::table
                .find(id)
                .select(users::username)
                .first::<String>(conn)
                .optional()?
                .map(|name| (id, name)),
            None => None,
        };
        let actor = Actor::system(scheduler.as_ref().map(|(id, name)| (*id, name.as_str())));
        if freeze::current(conn)?.is_some() {
            if flow.held_at.is_none() {
                let mut held = flow.clone();
                held.held_at = Some(crate::domain::now());
                workflow::save(conn, &held)?;
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::HELD)
                        .blog(post.blog_id)
                        .post(post.id)
                        .subject(post.display_title()),
                )?;
            }
            return Ok(ScheduledOutcome::Held);
        }
        let revision = revisions::find_id(conn, job.revision_id)?.ok_or(AppError::NotFound)?;
        // Scheduling required an approval of exactly this content; it must still hold.
        let Some(approval) = matching_approval(conn, &flow, &revision)? else {
            return Ok(ScheduledOutcome::Stale);
        };
        let blog = blogs::find(conn, post.blog_id)?.ok_or(AppError::NotFound)?;
        go_live(
            conn,
            &blog,
            &post,
            &revision,
            flow,
            &approval,
            (&actor, mentions),
        )?;
        Ok(ScheduledOutcome::Published)
    })
}

/// Withdraws a published post; its address answers 410 Gone until it is published again.
pub fn unpublish(conn: &mut DbConnection, post: &Post, actor: &Actor) -> Result<Post, AppError> {
    write_tx(conn, |conn| {
        let standing = standing_of(conn, post.blog_id, actor)?;
        if !standing.can_withdraw() {
            return Err(AppError::Forbidden);
        }
        let post = workflow::lock_post(conn, post.id)?.ok_or(AppError::NotFound)?;
        let withdrawn = posts::unpublish(conn, &post)?;
        let mut flow = workflow::get(conn, &post)?;
        let head = revisions::ensure_head(conn, &post)?;
        flow.live_revision_id = None;
        flow.head_revision_id = Some(head.id);
        flow.set_stage(if matching_approval(conn, &flow, &head)?.is_some() {
            Stage::Approved
        } else {
            Stage::Draft
        });
        workflow::save(conn, &flow)?;
        audit::record(
            conn,
            &audit::Event::new(actor, actions::UNPUBLISHED)
                .blog(post.blog_id)
                .post(post.id)
                .subject(post.display_title()),
        )?;
        // HOOK: the post was withdrawn.
        outbox::post_changed(conn, &withdrawn, Change::Withdrawn)?;
        Ok(withdrawn)
    })
}

/// Deletes a post (a tombstone if it was ever public).
pub fn delete(conn: &mut DbConnection, post: &Post, actor: &Actor) -> Result<(), AppError> {
    write_tx(conn, |conn| {
        let standing = standing_of(conn, post.blog_id, actor)?;
        let post = workflow::lock_post(conn, post.id)?.ok_or(AppError::NotFound)?;
        let flow = workflow::get(conn, &post)?;
        let own_draft = standing.can_edit(&post, flow.stage()) && post.published_at.is_none();
        if !(standing.can_withdraw() || own_draft) {
            return Err(AppError::Forbidden);
        }
        let title = post.display_title();
        let was_public = post.status() == Status::Published;
        posts::delete(conn, &post)?;
        audit::record(
            conn,
            &audit::Event::new(actor, actions::DELETED)
                .blog(post.blog_id)
                .post(post.id)
                .subject(title)
                .detail("was_public", post.published_at.is_some()),
        )?;
        // HOOK: the post was deleted. One that was public is withdrawn from the
        // fediverse; one already unpublished was withdrawn then, and a draft never went out.
        if was_public && let Some(tombstone) = posts::find(conn, post.id)? {
            outbox::post_changed(conn, &tombstone, Change::Withdrawn)?;
        }
        Ok(())
    })
}
