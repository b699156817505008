//! Actors: each blog as a `Person` we serve, and the accounts of other servers we meet
//! (followers, repliers), fetched with signed requests and kept in `actors`.

use activitypub_federation::config::Data;
use activitypub_federation::fetch::object_id::ObjectId;
use activitypub_federation::traits::{Actor, Object};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::keys::{self, url};
use super::protocol::{self, Endpoints, Image, Person, PropertyValue, PublicKey};
use super::{FederationData, FederationError};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::db::schema::actors;
use crate::domain::blogs::Blog;
use crate::domain::media::{self, Media};

/// A blog as the fediverse sees it.
pub fn person(
    conn: &mut DbConnection,
    settings: &Settings,
    blog: &Blog,
) -> Result<Person, FederationError> {
    let signer = keys::blog_actor(conn, settings, blog)?;
    let image = |media: Option<Media>| {
        media.map(|m| Image {
            kind: "Image".into(),
            media_type: m.content_type.clone(),
            url: url(settings, &m.path()),
            name: Some(m.alt_text.clone()),
            width: Some(m.width),
            height: Some(m.height),
        })
    };
    let icon = match blog.photo_media_id {
        Some(id) => image(media::find(conn, id)?),
        None => None,
    };
    let header = match blog.header_media_id {
        Some(id) => image(media::find(conn, id)?),
        None => None,
    };
    let base = blog.path();
    let id = keys::blog_id(settings, blog);
    Ok(Person {
        context: protocol::context(),
        id: id.clone(),
        kind: "Person",
        preferred_username: blog.handle.clone(),
        name: blog.display_name.clone(),
        summary: profile_summary(blog),
        url: id.clone(),
        inbox: signer.inbox.clone(),
        outbox: url(settings, &format!("{base}/outbox")),
        followers: url(settings, &format!("{base}/followers")),
        following: url(settings, &format!("{base}/following")),
        featured: url(settings, &format!("{base}/featured")),
        endpoints: Endpoints {
            shared_inbox: Some(url(settings, "/inbox")),
        },
        public_key: PublicKey {
            id: signer.key_id(),
            owner: id,
            public_key_pem: signer.public_key_pem.clone(),
        },
        published: blog.created_at.and_utc(),
        manually_approves_followers: blog.manually_approves_followers,
        discoverable: blog.discoverable,
        indexable: blog.discoverable,
        icon,
        image: header,
        attachment: profile_fields(settings, blog),
    })
}

/// The about text; with no about text, the role line, so the profile is not blank.
fn profile_summary(blog: &Blog) -> String {
    if blog.bio_html.is_empty() {
        blog.byline()
            .map(|b| format!("<p>{}</p>", escape(&b)))
            .unwrap_or_default()
    } else {
        blog.bio_html.as_str().to_owned()
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn link(href: &str, text: &str) -> String {
    format!(
        r#"<a href="{}" rel="me nofollow noopener noreferrer" target="_blank">{}</a>"#,
        escape(href),
        escape(text)
    )
}

/// Role, organisation, the blog's about page (which links back with `rel="me"`, so
/// Mastodon shows it verified) and the leader's own links.
fn profile_fields(settings: &Settings, blog: &Blog) -> Vec<PropertyValue> {
    let field = |name: &str, value: String| PropertyValue {
        kind: "PropertyValue",
        name: name.to_owned(),
        value,
    };
    let mut fields = Vec::new();
    if let Some(role) = &blog.role_title {
        fields.push(field("Role", escape(role)));
    }
    if let Some(organisation) = &blog.organisation {
        fields.push(field("Organisation", escape(organisation)));
    }
    let about = url(settings, &format!("{}/about", blog.path()));
    fields.push(field("Website", link(about.as_str(), about.as_str())));
    // Mastodon holds its own accounts to four fields but shows every field another
    // server sends, so the leader's own links are not dropped to make room.
    for profile_link in blog.profile_links().into_iter().take(4) {
        fields.push(field(
            &profile_link.label,
            link(&profile_link.url, &profile_link.url),
        ));
    }
    fields
}

/// An account on another server, as stored.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = actors)]
pub struct ActorRow {
    /// Row id.
    pub id: i64,
    /// Its ActivityPub id.
    pub ap_id: String,
    /// Its server.
    pub domain: String,
    /// Its preferred username.
    pub username: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// Its profile page.
    pub profile_url: Option<String>,
    /// Its avatar.
    pub icon_url: Option<String>,
    /// Its inbox.
    pub inbox: String,
    /// Its server's shared inbox.
    pub shared_inbox: Option<String>,
    /// Its key's id.
    pub public_key_id: Option<String>,
    /// Its key.
    pub public_key_pem: Option<String>,
    /// The account it moved to.
    pub moved_to: Option<String>,
    /// When we last fetched it.
    pub fetched_at: NaiveDateTime,
    /// When it was deleted.
    pub deleted_at: Option<NaiveDateTime>,
    /// When we first saw it.
    pub created_at: NaiveDateTime,
}

/// An account on another server, with its id parsed (the library works with `Url`s).
#[derive(Debug, Clone)]
pub struct RemoteActor {
    /// The stored row.
    pub row: ActorRow,
    /// `row.ap_id`, parsed.
    pub url: Url,
}

impl std::ops::Deref for RemoteActor {
    type Target = ActorRow;

    fn deref(&self) -> &ActorRow {
        &self.row
    }
}

impl TryFrom<ActorRow> for RemoteActor {
    type Error = FederationError;

    fn try_from(row: ActorRow) -> Result<Self, FederationError> {
        let url = Url::parse(&row.ap_id)
            .map_err(|e| FederationError::Invalid(format!("stored actor id {}: {e}", row.ap_id)))?;
        Ok(Self { row, url })
    }
}

impl ActorRow {
    /// `@user@server`.
    pub fn handle(&self) -> String {
        format!("@{}@{}", self.username, self.domain)
    }

    /// The name to show: display name, else the handle.
    pub fn name(&self) -> String {
        self.display_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.handle())
    }

    /// Where deliveries to it go: its server's shared inbox if it has one.
    pub fn delivery_inbox(&self) -> &str {
        self.shared_inbox.as_deref().unwrap_or(&self.inbox)
    }
}

/// An actor document as other servers send it; lenient where servers differ.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemotePerson {
    /// Its id.
    pub id: Url,
    /// Person, Service, Application, Group, Organization.
    #[serde(rename = "type")]
    pub kind: String,
    /// The username.
    pub preferred_username: Option<String>,
    /// The display name.
    pub name: Option<String>,
    /// Its inbox.
    pub inbox: Url,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Option<Endpoints>,
    /// Its key.
    pub public_key: Option<PublicKey>,
    /// Its avatar: an Image, a link, or a list of either.
    #[serde(default)]
    pub icon: Option<Value>,
    /// Its profile page: a string, a Link, or a list.
    #[serde(default)]
    pub url: Option<Value>,
    /// Where it moved.
    #[serde(default)]
    pub moved_to: Option<Url>,
    /// Other ids of the same person (checked on Move).
    #[serde(default)]
    pub also_known_as: Option<Value>,
}

/// The first URL in a value that may be a string, an object with `url`/`href`, or a list.
pub fn first_url(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(first_url),
        Value::Object(map) => map
            .get("href")
            .or_else(|| map.get("url"))
            .and_then(first_url),
        _ => None,
    }
}

/// Every URL in a value that may be one string or a list of them.
pub fn urls(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(urls).collect(),
        Value::Object(map) => map.get("id").map(urls).unwrap_or_default(),
        _ => Vec::new(),
    }
}

const ACTOR_TYPES: &[&str] = &["Person", "Service", "Application", "Group", "Organization"];

/// Stores what an actor document says, by its id.
pub fn upsert(
    conn: &mut DbConnection,
    person: &RemotePerson,
) -> Result<RemoteActor, FederationError> {
    let domain = person
        .id
        .host_str()
        .map(|h| match person.id.port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_owned(),
        })
        .ok_or_else(|| FederationError::Invalid("actor id has no host".into()))?;
    let username = person
        .preferred_username
        .clone()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| {
            person
                .id
                .path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into())
        });
    let now = crate::domain::now();
    let clip = |s: Option<String>, max: usize| s.map(|v| v.chars().take(max).collect::<String>());
    let values = (
        actors::ap_id.eq(person.id.as_str()),
        actors::domain.eq(&domain),
        actors::username.eq(clip(Some(username), 100).unwrap_or_default()),
        actors::display_name.eq(clip(person.name.clone(), 200)),
        actors::profile_url.eq(person.url.as_ref().and_then(first_url)),
        actors::icon_url.eq(person.icon.as_ref().and_then(first_url)),
        actors::inbox.eq(person.inbox.as_str()),
        actors::shared_inbox.eq(person
            .endpoints
            .as_ref()
            .and_then(|e| e.shared_inbox.as_ref())
            .map(Url::to_string)),
        actors::public_key_id.eq(person.public_key.as_ref().map(|k| k.id.clone())),
        actors::public_key_pem.eq(person.public_key.as_ref().map(|k| k.public_key_pem.clone())),
        actors::moved_to.eq(person.moved_to.as_ref().map(Url::to_string)),
        actors::fetched_at.eq(now),
    );
    crate::on_backend!(conn, |c| diesel::insert_into(actors::table)
        .values((values.clone(), actors::created_at.eq(now)))
        .on_conflict(actors::ap_id)
        .do_update()
        .set((values, actors::deleted_at.eq(None::<NaiveDateTime>)))
        .execute(c))?;
    find_by_ap_id(conn, person.id.as_str())?
        .ok_or_else(|| FederationError::Invalid("actor vanished after upsert".into()))
}

/// The account with this id.
pub fn find_by_ap_id(
    conn: &mut DbConnection,
    ap_id: &str,
) -> Result<Option<RemoteActor>, FederationError> {
    actors::table
        .filter(actors::ap_id.eq(ap_id))
        .select(ActorRow::as_select())
        .first(conn)
        .optional()?
        .map(RemoteActor::try_from)
        .transpose()
}

/// The account whose key has this id.
pub fn find_by_key_id(
    conn: &mut DbConnection,
    key_id: &str,
) -> Result<Option<RemoteActor>, FederationError> {
    actors::table
        .filter(actors::public_key_id.eq(key_id))
        .filter(actors::deleted_at.is_null())
        .select(ActorRow::as_select())
        .first(conn)
        .optional()?
        .map(RemoteActor::try_from)
        .transpose()
}

/// Marks an account deleted (its server said so).
pub fn mark_deleted(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(actors::table.find(id))
        .set(actors::deleted_at.eq(crate::domain::now()))
        .execute(conn)?;
    Ok(())
}

/// Records where an account moved.
pub fn mark_moved(conn: &mut DbConnection, id: i64, target: &str) -> QueryResult<()> {
    diesel::update(actors::table.find(id))
        .set(actors::moved_to.eq(target))
        .execute(conn)?;
    Ok(())
}

/// Fetches (or reads from the database) the account with this id, refetching stale
/// copies (the library's rule: older than a day).
pub async fn dereference(
    id: &Url,
    data: &Data<FederationData>,
) -> Result<RemoteActor, FederationError> {
    ObjectId::<RemoteActor>::from(id.clone())
        .dereference(data)
        .await
}

/// Fetches the account again whatever we hold (its key may have changed).
pub async fn refetch(
    id: &Url,
    data: &Data<FederationData>,
) -> Result<RemoteActor, FederationError> {
    ObjectId::<RemoteActor>::from(id.clone())
        .dereference_forced(data)
        .await
}

#[async_trait::async_trait]
impl Object for RemoteActor {
    type DataType = FederationData;
    type Kind = RemotePerson;
    type Error = FederationError;

    fn id(&self) -> &Url {
        &self.url
    }

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        Some(self.fetched_at.and_utc())
    }

    async fn read_from_id(
        object_id: Url,
        data: &Data<Self::DataType>,
    ) -> Result<Option<Self>, Self::Error> {
        data.db(move |conn| find_by_ap_id(conn, object_id.as_str()))
            .await
    }

    async fn delete(&self, data: &Data<Self::DataType>) -> Result<(), Self::Error> {
        let id = self.row.id;
        data.db(move |conn| Ok(mark_deleted(conn, id)?)).await
    }

    async fn into_json(self, _data: &Data<Self::DataType>) -> Result<Self::Kind, Self::Error> {
        Err(FederationError::Invalid(
            "remote actors are not served".into(),
        ))
    }

    async fn verify(
        json: &Self::Kind,
        expected_domain: &Url,
        _data: &Data<Self::DataType>,
    ) -> Result<(), Self::Error> {
        activitypub_federation::protocol::verification::verify_domains_match(
            &json.id,
            expected_domain,
        )?;
        if !ACTOR_TYPES.contains(&json.kind.as_str()) {
            return Err(FederationError::Invalid(format!(
                "{} is not an actor type",
                json.kind
            )));
        }
        if let Some(key) = &json.public_key
            && key.owner != json.id
        {
            return Err(FederationError::Invalid(
                "the key belongs to another actor".into(),
            ));
        }
        activitypub_federation::protocol::verification::verify_domains_match(&json.inbox, &json.id)
            .map_err(|_| FederationError::Invalid("the inbox is on another server".into()))?;
        Ok(())
    }

    async fn from_json(json: Self::Kind, data: &Data<Self::DataType>) -> Result<Self, Self::Error> {
        data.db(move |conn| upsert(conn, &json)).await
    }
}

impl Actor for RemoteActor {
    fn public_key_pem(&self) -> &str {
        self.row.public_key_pem.as_deref().unwrap_or("")
    }

    fn private_key_pem(&self) -> Option<String> {
        None
    }

    fn inbox(&self) -> Url {
        Url::parse(&self.row.inbox).unwrap_or_else(|_| self.url.clone())
    }

    fn shared_inbox(&self) -> Option<Url> {
        self.row
            .shared_inbox
            .as_deref()
            .and_then(|s| Url::parse(s).ok())
    }
}
