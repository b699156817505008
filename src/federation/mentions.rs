//! Mentions in our posts, as the fediverse sees them.
//!
//! Before a post goes out, each `@user@server` in its text is looked up: WebFinger on
//! the server named, then the account's actor document, fetched signed (so servers in
//! secure mode answer) and checked by the federation library. That is network I/O, so it
//! happens before the publishing transaction ([`resolve`]); the transaction then records
//! what was found with the post ([`record`]), and the text links each found account. An
//! account that cannot be found stays plain text, and the post goes out anyway.
//!
//! What was recorded gives the post's `Mention` tags and `cc`, and the extra inboxes its
//! Create, Update and Delete go to ([`inboxes`]). A mention taken out by an edit is kept,
//! inactive: that account's server holds a copy, which the Update and Delete must reach
//! (Mastodon keeps such mentions "silent" for the same reason).

use std::time::Duration;

use diesel::prelude::*;
use serde::Deserialize;
use url::Url;

use super::actors::{self, RemoteActor};
use super::{Federation, FederationError, host_of, keys, moderation};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::db::schema::{actors as actors_table, post_mentions};
use crate::domain::blogs::{self, Blog};
use crate::domain::html::SafeHtml;
use crate::domain::mentions::{self, Acct};

/// How long resolving one post's mentions may take in all: someone is waiting to publish.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(20);
/// An account a mention was resolved to is used again without a new lookup for this
/// long (after which the federation library refetches actors too).
const REUSE_HOURS: i64 = 24;
/// The largest WebFinger document read.
const MAX_WEBFINGER_BYTES: usize = 64 * 1024;

/// An account a post's text mentions, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The address as the text has it (canonical form).
    pub acct: Acct,
    /// The account's row in `actors`; `None` for a blog on this server.
    pub actor_id: Option<i64>,
    /// Its ActivityPub id: the `Mention` tag's `href`.
    pub href: String,
    /// Its profile page: where the link in the text goes.
    pub profile_url: String,
}

/// The accounts a text mentions that could be found, looked up before publishing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions(Vec<Resolved>);

impl Mentions {
    /// Nothing looked up (autosaves, restores and other saves that never go out).
    pub fn none() -> Self {
        Self::default()
    }

    /// The account found for an address.
    pub fn get(&self, acct: &Acct) -> Option<&Resolved> {
        self.0.iter().find(|m| &m.acct == acct)
    }
}

/// Looks up every account `markdown` mentions. Blogs on this server and accounts found
/// for another post recently are read from the database; the rest are looked up over
/// the network, together, for at most [`RESOLVE_TIMEOUT`]. Never fails: an account that
/// cannot be found is left out (and logged).
pub async fn resolve(federation: &Federation, markdown: &str) -> Mentions {
    let wanted = mentions::find(markdown).mentions;
    if wanted.is_empty() {
        return Mentions::none();
    }
    let data = federation.to_request_data();
    let settings = data.settings.clone();
    let known = {
        let wanted = wanted.clone();
        data.db(move |conn| known_accounts(conn, &settings, &wanted))
            .await
    };
    let mut found = match known {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "could not read known accounts; looking mentions up again");
            Vec::new()
        }
    };
    let local_host = data.settings.domain().to_ascii_lowercase();
    let unknown: Vec<Acct> = wanted
        .iter()
        .filter(|acct| acct.host() != local_host && !found.iter().any(|m| &m.acct == *acct))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        found.extend(look_up(federation, unknown).await);
    }
    // In the order the text has them.
    Mentions(
        wanted
            .iter()
            .filter_map(|acct| found.iter().find(|m| &m.acct == acct).cloned())
            .collect(),
    )
}

/// Blogs of this server, and accounts recently resolved for another post.
fn known_accounts(
    conn: &mut DbConnection,
    settings: &Settings,
    wanted: &[Acct],
) -> Result<Vec<Resolved>, FederationError> {
    let local_host = settings.domain().to_ascii_lowercase();
    let fresh_since = crate::domain::now() - chrono::Duration::hours(REUSE_HOURS);
    let mut found = Vec::new();
    for acct in wanted {
        if acct.host() == local_host {
            if let Some(blog) = blogs::find_by_handle(conn, acct.user())? {
                let id = keys::blog_id(settings, &blog).to_string();
                found.push(Resolved {
                    acct: acct.clone(),
                    actor_id: None,
                    href: id.clone(),
                    profile_url: id,
                });
            }
            continue;
        }
        let reused: Option<(i64, String, Option<String>)> = post_mentions::table
            .inner_join(actors_table::table)
            .filter(post_mentions::acct.eq(acct.to_string()))
            .filter(actors_table::deleted_at.is_null())
            .filter(actors_table::fetched_at.gt(fresh_since))
            .order(post_mentions::updated_at.desc())
            .select((
                actors_table::id,
                actors_table::ap_id,
                actors_table::profile_url,
            ))
            .first(conn)
            .optional()?;
        if let Some((actor_id, ap_id, profile_url)) = reused {
            found.push(Resolved {
                acct: acct.clone(),
                actor_id: Some(actor_id),
                profile_url: profile_url.unwrap_or_else(|| ap_id.clone()),
                href: ap_id,
            });
        }
    }
    Ok(found)
}

/// The account at `user@server` on another server, looked up as a mention is
/// (WebFinger, confirmed by the account's own server, then a signed fetch), within
/// [`RESOLVE_TIMEOUT`]: for an admin who blocks an account by the address people know.
pub async fn find_account(
    federation: &Federation,
    acct: &Acct,
) -> Result<Resolved, FederationError> {
    let client = lookup_client(federation)?;
    tokio::time::timeout(RESOLVE_TIMEOUT, look_up_one(federation, &client, acct))
        .await
        .map_err(|_| FederationError::Invalid(format!("{acct} did not answer in time")))?
}

fn lookup_client(
    federation: &Federation,
) -> Result<reqwest_middleware::ClientWithMiddleware, FederationError> {
    let settings = federation.to_request_data().settings.clone();
    super::delivery::http_client(&settings, settings.federation_allow_private_addresses)
        .map_err(FederationError::Invalid)
}

/// Looks accounts up over the network, all at once, within [`RESOLVE_TIMEOUT`].
async fn look_up(federation: &Federation, accts: Vec<Acct>) -> Vec<Resolved> {
    let client = match lookup_client(federation) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "no HTTP client for looking up mentions");
            return Vec::new();
        }
    };
    let mut lookups = tokio::task::JoinSet::new();
    for acct in accts {
        let federation = federation.clone();
        let client = client.clone();
        lookups.spawn(async move {
            let result = look_up_one(&federation, &client, &acct).await;
            (acct, result)
        });
    }
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + RESOLVE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, lookups.join_next()).await {
            Ok(Some(Ok((_, Ok(resolved))))) => found.push(resolved),
            Ok(Some(Ok((acct, Err(e))))) => {
                tracing::info!(%acct, error = %e, "mention not resolved; it stays plain text");
            }
            Ok(Some(Err(e))) => tracing::warn!(error = %e, "a mention lookup failed"),
            Ok(None) => break,
            Err(_) => {
                tracing::info!(
                    pending = lookups.len(),
                    "mention lookups took too long; those stay plain text"
                );
                // Dropping the set cancels what is left.
                break;
            }
        }
    }
    found
}

/// WebFinger, then the account's actor (signed fetch, stored in `actors`).
async fn look_up_one(
    federation: &Federation,
    client: &reqwest_middleware::ClientWithMiddleware,
    acct: &Acct,
) -> Result<Resolved, FederationError> {
    let data = federation.to_request_data();
    let secure = !data.settings.federation_allow_private_addresses;
    let (_, actor_url) = webfinger(client, secure, acct.host(), &acct.to_string()).await?;
    let actor = actors::dereference(&actor_url, &data).await?;
    if actor.deleted_at.is_some() {
        return Err(FederationError::Invalid("the account is deleted".into()));
    }
    let home = host_of(&actor.url);
    if !home.eq_ignore_ascii_case(acct.host()) {
        // The server named is not the one the account lives on (Mastodon's split
        // domains): the account's own server must confirm the address, or anyone could
        // claim any account under their name.
        let canonical = format!("{}@{home}", actor.username);
        let (subject, confirmed) = webfinger(client, secure, &home, &canonical).await?;
        let subject = subject.strip_prefix("acct:").unwrap_or(&subject);
        if confirmed != actor.url || !subject.eq_ignore_ascii_case(&acct.to_string()) {
            return Err(FederationError::Invalid(format!(
                "{} does not confirm that {acct} is its account",
                actor.url
            )));
        }
    }
    Ok(resolved_from(acct, &actor))
}

fn resolved_from(acct: &Acct, actor: &RemoteActor) -> Resolved {
    Resolved {
        acct: acct.clone(),
        actor_id: Some(actor.row.id),
        href: actor.ap_id.clone(),
        profile_url: actor
            .profile_url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .unwrap_or_else(|| actor.ap_id.clone()),
    }
}

#[derive(Deserialize)]
struct Jrd {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    links: Vec<JrdLink>,
}

#[derive(Deserialize)]
struct JrdLink {
    rel: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    href: Option<String>,
}

/// Asks `host` about `user@server`: the subject it answers with and the account's
/// ActivityPub id (its `self` link). Over https, except where private addresses are
/// allowed (tests and closed networks, as the federation library does); one redirect is
/// followed, as servers that answer WebFinger on another host need.
async fn webfinger(
    client: &reqwest_middleware::ClientWithMiddleware,
    secure: bool,
    host: &str,
    acct: &str,
) -> Result<(String, Url), FederationError> {
    // As the federation library does for every fetch: no explicit ports outside tests
    // and closed networks.
    if secure && host.contains(':') {
        return Err(FederationError::Invalid(format!(
            "{host}: a server with a port is not looked up"
        )));
    }
    let scheme = if secure { "https" } else { "http" };
    let mut url = Url::parse(&format!("{scheme}://{host}/.well-known/webfinger"))
        .map_err(|e| FederationError::Invalid(format!("{host} is not a server name: {e}")))?;
    url.query_pairs_mut()
        .append_pair("resource", &format!("acct:{acct}"));
    let mut response = get_jrd(client, &url).await?;
    if response.status().is_redirection()
        && let Some(location) = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
    {
        let next = url
            .join(location)
            .map_err(|e| FederationError::Invalid(format!("bad WebFinger redirect: {e}")))?;
        if secure && next.scheme() != "https" {
            return Err(FederationError::Invalid(
                "WebFinger redirected away from https".into(),
            ));
        }
        response = get_jrd(client, &next).await?;
    }
    if response.status() != reqwest::StatusCode::OK {
        return Err(FederationError::Invalid(format!(
            "WebFinger on {host} answered {}",
            response.status()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FederationError::Invalid(format!("WebFinger on {host}: {e}")))?
    {
        if body.len() + chunk.len() > MAX_WEBFINGER_BYTES {
            return Err(FederationError::Invalid(format!(
                "WebFinger on {host} answered with too much"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let jrd: Jrd = serde_json::from_slice(&body).map_err(|e| {
        FederationError::Invalid(format!("WebFinger on {host} is not a JRD document: {e}"))
    })?;
    let actor = jrd
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("self"))
        .filter(|l| l.kind.as_deref().is_some_and(is_activity_type))
        .find_map(|l| l.href.as_deref().and_then(|h| Url::parse(h).ok()))
        .ok_or_else(|| {
            FederationError::Invalid(format!("WebFinger on {host} names no ActivityPub account"))
        })?;
    Ok((jrd.subject, actor))
}

async fn get_jrd(
    client: &reqwest_middleware::ClientWithMiddleware,
    url: &Url,
) -> Result<reqwest::Response, FederationError> {
    client
        .get(url.as_str())
        .header(
            reqwest::header::ACCEPT,
            "application/jrd+json, application/json",
        )
        .send()
        .await
        .map_err(|e| FederationError::Invalid(format!("WebFinger {url}: {e}")))
}

/// `application/activity+json`, or `application/ld+json` with the ActivityStreams profile.
fn is_activity_type(kind: &str) -> bool {
    let kind = kind.to_ascii_lowercase();
    kind.starts_with(super::ACTIVITY_JSON)
        || (kind.starts_with("application/ld+json")
            && kind.contains("https://www.w3.org/ns/activitystreams"))
}

/// A post's recorded mention.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = post_mentions)]
struct Row {
    acct: String,
    actor_id: Option<i64>,
    href: String,
    profile_url: String,
}

/// Records which accounts a post's public text mentions, in the publishing transaction:
/// each mention found by [`resolve`] (or recorded for this post before, which an edit that
/// keeps the mention keeps) that is not blocked for the blog. Mentions no longer in the
/// text are kept, inactive. Returns the active ones, in the text's order.
pub fn record(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    markdown: &str,
    found: &Mentions,
) -> QueryResult<Vec<Resolved>> {
    let before: Vec<Row> = post_mentions::table
        .filter(post_mentions::post_id.eq(post_id))
        .select(Row::as_select())
        .load(conn)?;
    let mut active = Vec::new();
    for acct in mentions::find(markdown).mentions {
        let candidate = found.get(&acct).cloned().or_else(|| {
            before
                .iter()
                .find(|row| row.acct == acct.to_string())
                .map(|row| Resolved {
                    acct: acct.clone(),
                    actor_id: row.actor_id,
                    href: row.href.clone(),
                    profile_url: row.profile_url.clone(),
                })
        });
        let Some(mention) = candidate else {
            continue;
        };
        if let Some(actor_id) = mention.actor_id {
            // A blocked account is not mentioned (Mastodon drops those too), and a
            // deleted one is not there to mention.
            let Some(Ok(actor)) = moderation::actor_row(conn, actor_id)?.map(RemoteActor::try_from)
            else {
                continue;
            };
            if actor.deleted_at.is_some() || moderation::is_blocked(conn, Some(blog.id), &actor)? {
                continue;
            }
        }
        active.push(mention);
    }
    let now = crate::domain::now();
    for mention in &active {
        let values = (
            post_mentions::actor_id.eq(mention.actor_id),
            post_mentions::href.eq(&mention.href),
            post_mentions::profile_url.eq(&mention.profile_url),
            post_mentions::active.eq(true),
            post_mentions::updated_at.eq(now),
        );
        crate::on_backend!(conn, |c| diesel::insert_into(post_mentions::table)
            .values((
                post_mentions::post_id.eq(post_id),
                post_mentions::acct.eq(mention.acct.to_string()),
                values,
                post_mentions::created_at.eq(now),
            ))
            .on_conflict((post_mentions::post_id, post_mentions::acct))
            .do_update()
            .set(values)
            .execute(c))?;
    }
    let kept: Vec<String> = active.iter().map(|m| m.acct.to_string()).collect();
    diesel::update(
        post_mentions::table
            .filter(post_mentions::post_id.eq(post_id))
            .filter(post_mentions::active.eq(true))
            .filter(post_mentions::acct.ne_all(&kept)),
    )
    .set((
        post_mentions::active.eq(false),
        post_mentions::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(active)
}

/// The post's text as HTML, with the mentions in `active` made links.
pub fn render(markdown: &str, active: &[Resolved]) -> SafeHtml {
    SafeHtml::from_markdown_with_mentions(markdown, &|acct| {
        active
            .iter()
            .find(|m| &m.acct == acct)
            .map(|m| m.profile_url.clone())
    })
}

/// The accounts a post's text mentions now, in no particular order.
pub fn active_of(conn: &mut DbConnection, post_id: i64) -> QueryResult<Vec<Resolved>> {
    let rows: Vec<Row> = post_mentions::table
        .filter(post_mentions::post_id.eq(post_id))
        .filter(post_mentions::active.eq(true))
        .order(post_mentions::created_at.asc())
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(Resolved {
                acct: Acct::parse(&row.acct)?,
                actor_id: row.actor_id,
                href: row.href,
                profile_url: row.profile_url,
            })
        })
        .collect())
}

/// Where the accounts a post mentions (now, or before an edit too) get its activities:
/// one inbox per server with a shared inbox; blogs here, deleted accounts and blocked
/// servers left out.
pub fn inboxes(
    conn: &mut DbConnection,
    post_id: i64,
    with_inactive: bool,
) -> QueryResult<Vec<String>> {
    let mut query = post_mentions::table
        .inner_join(actors_table::table)
        .filter(post_mentions::post_id.eq(post_id))
        .filter(actors_table::deleted_at.is_null())
        .into_boxed();
    if !with_inactive {
        query = query.filter(post_mentions::active.eq(true));
    }
    let rows: Vec<(String, Option<String>, String)> = query
        .select((
            actors_table::inbox,
            actors_table::shared_inbox,
            actors_table::domain,
        ))
        .load(conn)?;
    moderation::delivery_inboxes(conn, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webfinger_self_links_name_activitypub_documents() {
        assert!(is_activity_type("application/activity+json"));
        assert!(is_activity_type(
            r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#
        ));
        assert!(!is_activity_type("application/ld+json"));
        assert!(!is_activity_type("text/html"));
    }

    #[tokio::test]
    async fn a_server_with_a_port_is_not_looked_up_outside_tests() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            super::super::delivery::http_client(&Settings::default(), false).expect("client");
        let refused = webfinger(
            &client,
            true,
            "example.social:8443",
            "jane@example.social:8443",
        )
        .await
        .expect_err("refused");
        assert!(refused.to_string().contains("port"), "{refused}");
    }
}
