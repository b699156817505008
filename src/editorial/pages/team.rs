//! A blog's team: members and their roles, invitations, and the sign-off rules. The
//! owner and instance administrators manage it; everyone on the team can see it.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{load_blog, see_other};
use crate::db::write_tx;
use crate::domain::blogs::{Blog, Role};
use crate::domain::names::EmailAddress;
use crate::domain::users;
use crate::editorial::audit::{self, actions};
use crate::editorial::invitations::{self, Invitation};
use crate::editorial::roles::{self, Member, Rules, Standing};
use crate::editorial::schedule::format_london;
use crate::editorial::{Actor, freeze};
use crate::error::{AppError, FieldError};
use crate::web::AppState;
use crate::web::auth::{SignedIn, html_page};
use crate::web::ui::{self, Field, Page};

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}/team", web::get().to(show))
        .route("/@{handle}/team/invite", web::post().to(invite))
        .route("/@{handle}/team/role", web::post().to(change_role))
        .route("/@{handle}/team/remove", web::post().to(remove))
        .route("/@{handle}/team/rules", web::post().to(set_rules))
        .route(
            "/@{handle}/team/invitations/{id}/revoke",
            web::post().to(revoke),
        );
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

fn done_message(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "invited" => Some("Invitation sent"),
        "role" => Some("Role changed. It applies from their next click."),
        "removed" => Some("Removed from the team. They lost access at once."),
        "rules" => Some("Sign-off rules saved"),
        "revoked" => Some("Invitation withdrawn"),
        "joined" => Some("Welcome to the team"),
        _ => None,
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
struct InviteValues {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn show(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let (blog, standing) = load_blog(&state, &me.user, path.into_inner()).await?;
    render(
        &state,
        &me,
        &blog,
        standing,
        done_message(query.done.as_deref()),
        &[],
        &InviteValues::default(),
        200,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    me: &SignedIn,
    blog: &Blog,
    standing: Standing,
    notice: Option<&str>,
    errors: &[FieldError],
    values: &InviteValues,
    status: u16,
) -> Result<HttpResponse, AppError> {
    let blog_id = blog.id;
    let (members, pending, freeze) = state
        .db(move |conn| {
            Ok((
                roles::members(conn, blog_id)?,
                invitations::pending(conn, blog_id)?,
                freeze::current(conn)?,
            ))
        })
        .await?;
    let page = team_page(
        blog,
        standing,
        &members,
        &pending,
        freeze.as_ref(),
        me,
        notice,
        errors,
        values,
    );
    let mut response = html_page(&me.chrome(state), page);
    if let Ok(code) = actix_web::http::StatusCode::from_u16(status) {
        *response.status_mut() = code;
    }
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
fn team_page(
    blog: &Blog,
    standing: Standing,
    members: &[Member],
    pending: &[Invitation],
    freeze: Option<&freeze::Freeze>,
    me: &SignedIn,
    notice: Option<&str>,
    errors: &[FieldError],
    values: &InviteValues,
) -> Page {
    let manage = standing.can_manage_team();
    let csrf = &me.csrf_token;
    let base = format!("/dashboard/@{}/team", blog.handle);
    let editors: Vec<&Member> = members.iter().filter(|m| m.role == Role::Editor).collect();
    Page {
        title: format!("{} – team", blog.display_name),
        noindex: true,
        breadcrumbs: super::trail(blog),
        main: html! {
            (super::freeze_banner(freeze))
            (ui::error_summary(errors))
            @if let Some(notice) = notice { (ui::success_banner(notice)) }
            h1 { "Team" span class="nhsuk-caption-l nhsuk-caption--bottom" { (blog.display_name) } }
            table class="nhsuk-table" {
                caption class="nhsuk-table__caption" { "People on the team" }
                thead class="nhsuk-table__head" {
                    tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Name" }
                        th class="nhsuk-table__header" scope="col" { "Role" }
                        @if manage { th class="nhsuk-table__header" scope="col" { "Change" } }
                    }
                }
                tbody class="nhsuk-table__body" {
                    @for member in members {
                        tr class="nhsuk-table__row" {
                            td class="nhsuk-table__cell" {
                                (member.username) br;
                                span class="nhsuk-body-s" { (member.email) }
                            }
                            td class="nhsuk-table__cell" {
                                (role_label(member.role))
                                @if standing.rules.delegate_id == Some(member.user_id) && member.role == Role::Editor {
                                    br; span class="nhsuk-body-s" { "Approves for the owner" }
                                }
                            }
                            @if manage {
                                td class="nhsuk-table__cell" {
                                    @if member.role != Role::Owner {
                                        (member_actions(&base, member, csrf))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            details class="nhsuk-details" {
                summary class="nhsuk-details__summary" { span class="nhsuk-details__summary-text" { "What each role may do" } }
                div class="nhsuk-details__text" {
                    ul {
                        li { strong { "Owner" } ": the leader. Writes, approves and publishes; manages the team." }
                        li { strong { "Editor" } ": writes and edits any post, submits for sign-off, publishes or schedules once approved, moderates replies." }
                        li { strong { "Contributor" } ": writes and edits their own drafts and submits them for sign-off." }
                    }
                }
            }
            h2 { "Sign-off" }
            @if manage {
                form method="post" action={ (base) "/rules" } {
                    (ui::csrf_field(csrf))
                    div class="nhsuk-form-group" {
                        div class="nhsuk-checkboxes" {
                            div class="nhsuk-checkboxes__item" {
                                input class="nhsuk-checkboxes__input" id="owner_sign_off" name="owner_sign_off" type="checkbox" value="on" checked[standing.rules.owner_sign_off] aria-describedby="owner_sign_off-hint";
                                label class="nhsuk-label nhsuk-checkboxes__label" for="owner_sign_off" { "Only the owner can approve posts (recommended)" }
                                div class="nhsuk-hint nhsuk-checkboxes__hint" id="owner_sign_off-hint" {
                                    "A post then goes out under the owner's name only when the exact version they approved is published. Without this, editors approve and publish."
                                }
                            }
                        }
                    }
                    div class="nhsuk-form-group" {
                        label class="nhsuk-label" for="delegate" { "Editor who may approve on the owner's behalf" }
                        div class="nhsuk-hint" id="delegate-hint" { "For when the owner is away. Only editors can be chosen." }
                        select class="nhsuk-select" id="delegate" name="delegate" aria-describedby="delegate-hint" {
                            option value="" selected[standing.rules.delegate_id.is_none()] { "Nobody" }
                            @for editor in &editors {
                                option value=(editor.user_id) selected[standing.rules.delegate_id == Some(editor.user_id)] { (editor.username) }
                            }
                        }
                    }
                    button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Save sign-off rules" }
                }
                h2 { "Invite someone" }
                form method="post" action={ (base) "/invite" } novalidate {
                    (ui::csrf_field(csrf))
                    (ui::input(Field::text("email", "Email address").kind("email").autocomplete("off")
                        .hint("They get a link that works once, for a few days."), &values.email, errors))
                    (role_radios(values, errors))
                    button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Send invitation" }
                }
                @if !pending.is_empty() {
                    h2 { "Invitations not yet accepted" }
                    ul class="nhsuk-list" {
                        @for invitation in pending {
                            li {
                                (invitation.email) " as " (role_label(invitation.role()).to_lowercase())
                                ", until " (format_london(invitation.expires_at))
                                form method="post" action={ (base) "/invitations/" (invitation.id) "/revoke" } class="rounds-inline-form" {
                                    (ui::csrf_field(csrf))
                                    button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                        "Withdraw" span class="nhsuk-u-visually-hidden" { " the invitation to " (invitation.email) }
                                    }
                                }
                            }
                        }
                    }
                }
            } @else {
                p {
                    @if standing.rules.owner_sign_off { "Only the owner approves posts." } @else { "Editors approve and publish posts." }
                    " The owner manages the team."
                }
            }
        },
        ..Page::default()
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "Owner",
        Role::Editor => "Editor",
        Role::Contributor => "Contributor",
    }
}

fn member_actions(base: &str, member: &Member, csrf: &str) -> Markup {
    let other = if member.role == Role::Editor {
        Role::Contributor
    } else {
        Role::Editor
    };
    html! {
        form method="post" action={ (base) "/role" } class="rounds-inline-form" {
            (ui::csrf_field(csrf))
            input type="hidden" name="user_id" value=(member.user_id);
            input type="hidden" name="role" value=(other.as_str());
            button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                "Make " (role_label(other).to_lowercase()) span class="nhsuk-u-visually-hidden" { ": " (member.username) }
            }
        }
        form method="post" action={ (base) "/remove" } class="rounds-inline-form" {
            (ui::csrf_field(csrf))
            input type="hidden" name="user_id" value=(member.user_id);
            button class="nhsuk-button nhsuk-button--warning nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                "Remove" span class="nhsuk-u-visually-hidden" { " " (member.username) " from the team" }
            }
        }
    }
}

fn role_radios(values: &InviteValues, errors: &[FieldError]) -> Markup {
    let error = ui::error_for(errors, "role");
    html! {
        div class={ "nhsuk-form-group" @if error.is_some() { " nhsuk-form-group--error" } } {
            fieldset class="nhsuk-fieldset" aria-describedby=[error.map(|_| "role-error")] {
                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Role" }
                @if let Some(error) = error {
                    span class="nhsuk-error-message" id="role-error" { span class="nhsuk-u-visually-hidden" { "Error: " } (error) }
                }
                div class="nhsuk-radios" id="role" {
                    @for (value, label, hint) in [
                        ("editor", "Editor", "Writes and edits any post, publishes or schedules once approved, moderates replies"),
                        ("contributor", "Contributor", "Writes their own drafts and submits them for sign-off"),
                    ] {
                        div class="nhsuk-radios__item" {
                            input class="nhsuk-radios__input" id={ "role-" (value) } name="role" type="radio" value=(value)
                                checked[values.role == value] aria-describedby={ "role-" (value) "-hint" };
                            label class="nhsuk-label nhsuk-radios__label" for={ "role-" (value) } { (label) }
                            div class="nhsuk-hint nhsuk-radios__hint" id={ "role-" (value) "-hint" } { (hint) }
                        }
                    }
                }
            }
        }
    }
}

/// The blog, if the signed-in person manages its team.
async fn managed(
    state: &AppState,
    me: &SignedIn,
    handle: String,
) -> Result<(Blog, Standing), AppError> {
    let (blog, standing) = load_blog(state, &me.user, handle).await?;
    if !standing.can_manage_team() {
        return Err(AppError::Forbidden);
    }
    Ok((blog, standing))
}

#[derive(Deserialize)]
struct InviteForm {
    csrf_token: String,
    #[serde(flatten)]
    values: InviteValues,
}

async fn invite(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (blog, standing) = managed(&state, &me, path.into_inner()).await?;
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&form.values.email)
        .map_err(|e| errors.push(FieldError::new("email", e)))
        .ok();
    let role = match form.values.role.as_str() {
        "editor" => Some(Role::Editor),
        "contributor" => Some(Role::Contributor),
        _ => {
            errors.push(FieldError::new("role", "Choose the role they will have"));
            None
        }
    };
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return render(
            &state,
            &me,
            &blog,
            standing,
            None,
            &errors,
            &form.values,
            400,
        )
        .await;
    };
    let actor = Actor::web(&me.user);
    let valid_for =
        chrono::Duration::hours(i64::try_from(state.settings.invitation_hours).unwrap_or(72));
    let blog_for_db = blog.clone();
    let instance = state.settings.instance_name.clone();
    let link_base = state.settings.url("/dashboard/invitations/");
    let result = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                if let Some(user) = crate::domain::users::find_for_sign_in(conn, email.as_str())?
                    && crate::domain::blogs::role_of(conn, blog_for_db.id, user.id)?.is_some()
                {
                    return Err(AppError::invalid(
                        "email",
                        format!("{email} is on the team already"),
                    ));
                }
                let inviter = actor.user_id.unwrap_or_default();
                let (invitation, token) = invitations::create(
                    conn,
                    blog_for_db.id,
                    email.as_str(),
                    role,
                    inviter,
                    valid_for,
                )?;
                let link = format!("{link_base}{token}");
                let message = crate::mail::Email {
                    to: email.to_string(),
                    subject: format!("You are invited to the {} blog", blog_for_db.display_name),
                    text: format!(
                        "{} invited you to join the team of the {} blog on {instance} as {}.\n\nAccept the invitation: {link}\n\nThe link works once and stops working on {}. If you were not expecting this, you can ignore this email.\n",
                        actor.name,
                        blog_for_db.display_name,
                        role.as_str(),
                        format_london(invitation.expires_at),
                    ),
                    html: None,
                    reply_to: None,
                    bulk: None,
                };
                let job = message
                    .job(format!("invitation:{}", invitation.id))
                    .map_err(|e| AppError::internal(e.to_string()))?;
                crate::jobs::enqueue(conn, &job)?;
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::INVITED)
                        .blog(blog_for_db.id)
                        .subject(email.to_string())
                        .detail("role", role.as_str())
                        .detail("invitation", invitation.id),
                )?;
                Ok(())
            })
        })
        .await;
    match result {
        Ok(()) => {
            state.jobs_wake.notify_one();
            Ok(see_other(&format!(
                "/dashboard/@{}/team?done=invited",
                blog.handle
            )))
        }
        Err(AppError::Validation(errors)) => {
            render(
                &state,
                &me,
                &blog,
                standing,
                None,
                &errors,
                &form.values,
                400,
            )
            .await
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
struct MemberForm {
    csrf_token: String,
    user_id: i64,
    role: Option<String>,
}

async fn change_role(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (blog, _) = managed(&state, &me, path.into_inner()).await?;
    let role = match form.role.as_deref() {
        Some("editor") => Role::Editor,
        Some("contributor") => Role::Contributor,
        _ => return Err(AppError::invalid("role", "Choose editor or contributor")),
    };
    let actor = Actor::web(&me.user);
    let (blog_id, user_id) = (blog.id, form.user_id);
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let before = crate::domain::blogs::role_of(conn, blog_id, user_id)?
                    .ok_or(AppError::NotFound)?;
                if before == Role::Owner {
                    return Err(AppError::Conflict(
                        "the owner's role cannot be changed".into(),
                    ));
                }
                roles::set_member(conn, blog_id, user_id, role)?;
                let name = users::find(conn, user_id)?
                    .map(|u| u.username)
                    .unwrap_or_default();
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::ROLE_CHANGED)
                        .blog(blog_id)
                        .subject(name)
                        .detail("user_id", user_id)
                        .detail("from", before.as_str())
                        .detail("to", role.as_str()),
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/team?done=role",
        blog.handle
    )))
}

async fn remove(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (blog, _) = managed(&state, &me, path.into_inner()).await?;
    let actor = Actor::web(&me.user);
    let (blog_id, user_id) = (blog.id, form.user_id);
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let before = crate::domain::blogs::role_of(conn, blog_id, user_id)?
                    .ok_or(AppError::NotFound)?;
                if before == Role::Owner || !roles::remove_member(conn, blog_id, user_id)? {
                    return Err(AppError::Conflict("the owner cannot be removed".into()));
                }
                // A delegate who leaves the team no longer approves.
                let mut rules = roles::rules_of(conn, blog_id)?;
                if rules.delegate_id == Some(user_id) {
                    rules.delegate_id = None;
                    roles::set_rules(conn, blog_id, rules)?;
                }
                let name = users::find(conn, user_id)?
                    .map(|u| u.username)
                    .unwrap_or_default();
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::MEMBER_REMOVED)
                        .blog(blog_id)
                        .subject(name)
                        .detail("user_id", user_id)
                        .detail("role", before.as_str()),
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/team?done=removed",
        blog.handle
    )))
}

#[derive(Deserialize)]
struct RulesForm {
    csrf_token: String,
    owner_sign_off: Option<String>,
    delegate: Option<String>,
}

async fn set_rules(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<RulesForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (blog, _) = managed(&state, &me, path.into_inner()).await?;
    let delegate = match form.delegate.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => Some(
            id.parse::<i64>()
                .map_err(|_| AppError::invalid("delegate", "Choose an editor or nobody"))?,
        ),
    };
    let rules = Rules {
        owner_sign_off: form.owner_sign_off.is_some(),
        delegate_id: delegate,
    };
    let actor = Actor::web(&me.user);
    let blog_id = blog.id;
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                if let Some(id) = rules.delegate_id
                    && crate::domain::blogs::role_of(conn, blog_id, id)? != Some(Role::Editor)
                {
                    return Err(AppError::invalid(
                        "delegate",
                        "Only an editor on the team can approve for the owner",
                    ));
                }
                let before = roles::rules_of(conn, blog_id)?;
                roles::set_rules(conn, blog_id, rules)?;
                let delegate_name = match rules.delegate_id {
                    Some(id) => users::find(conn, id)?.map(|u| u.username),
                    None => None,
                };
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::BLOG_RULES_CHANGED)
                        .blog(blog_id)
                        .subject("sign-off rules")
                        .detail("owner_sign_off", rules.owner_sign_off)
                        .detail("was_owner_sign_off", before.owner_sign_off)
                        .detail("delegate", delegate_name),
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/team?done=rules",
        blog.handle
    )))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

async fn revoke(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (handle, id) = path.into_inner();
    let (blog, _) = managed(&state, &me, handle).await?;
    let actor = Actor::web(&me.user);
    let blog_id = blog.id;
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let invitation =
                    invitations::revoke(conn, blog_id, id)?.ok_or(AppError::NotFound)?;
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::INVITATION_REVOKED)
                        .blog(blog_id)
                        .subject(invitation.email)
                        .detail("invitation", id),
                )?;
                Ok(())
            })
        })
        .await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/team?done=revoked",
        blog.handle
    )))
}
