//! The editorial workflow: how a comms team and a leader write, co-edit, sign off and
//! publish posts, with every step on record.
//!
//! * [`roles`]: who may do what on a blog, the per-blog sign-off rule and delegation;
//! * [`invitations`]: single-use, expiring links that add people to a blog's team;
//! * [`revisions`], [`diff`], [`merge`]: every save is a revision; word-level diffs;
//!   three-way merges when two people saved the same draft;
//! * [`workflow`]: draft → in review → approved → scheduled or published, and approvals;
//! * [`schedule`]: publishing at a Europe/London time from the durable job queue;
//! * [`freeze`]: the instance-wide publishing freeze;
//! * [`checks`], [`preview`]: checks before publishing, and previews as the web page,
//!   Mastodon and email show the post;
//! * [`presence`], [`comments`]: who has a draft open; the team's comments;
//! * [`audit`]: the append-only, tamper-evident audit log.
//!
//! The rules that decide whether a post may be saved, approved or published live in
//! [`crate::publishing`], so the web and the `rounds` command obey the same ones.

pub mod audit;
pub mod checks;
pub mod comments;
pub mod diff;
pub mod freeze;
pub mod invitations;
pub mod merge;
pub mod pages;
pub mod presence;
pub mod preview;
pub mod revisions;
pub mod roles;
pub mod schedule;
pub mod workflow;

use crate::domain::users::User;

/// Which door an action came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The web pages.
    Web,
    /// The `rounds` command line.
    Command,
    /// The server itself (a scheduled publish, a held post going out).
    System,
}

impl Source {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Command => "command",
            Self::System => "system",
        }
    }
}

/// Who is doing something: an account (or the operator at the command line, or the
/// server itself) and through which door.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The account, if one acts.
    pub user_id: Option<i64>,
    /// The name the audit log shows.
    pub name: String,
    /// Whether the account is an instance administrator.
    pub is_admin: bool,
    /// Web, command line or the server.
    pub source: Source,
    /// The client's address, for sign-ins from the web.
    pub address: Option<String>,
}

impl Actor {
    /// A signed-in person on the web.
    pub fn web(user: &User) -> Self {
        Self::of(user, Source::Web)
    }

    /// An account named at the command line (e.g. a post's `--author`).
    pub fn command(user: &User) -> Self {
        Self::of(user, Source::Command)
    }

    /// The operator at the command line, acting as no account.
    pub fn operator() -> Self {
        Self {
            user_id: None,
            name: "operator (command line)".to_owned(),
            is_admin: true,
            source: Source::Command,
            address: None,
        }
    }

    /// The server acting on someone's earlier instruction (e.g. a scheduled publish).
    pub fn system(on_behalf_of: Option<(i64, &str)>) -> Self {
        Self {
            user_id: on_behalf_of.map(|(id, _)| id),
            name: match on_behalf_of {
                Some((_, name)) => format!("rounds (for {name})"),
                None => "rounds".to_owned(),
            },
            is_admin: false,
            source: Source::System,
            address: None,
        }
    }

    fn of(user: &User, source: Source) -> Self {
        Self {
            user_id: Some(user.id),
            name: user.username.clone(),
            is_admin: user.is_admin,
            source,
            address: None,
        }
    }

    /// With the client's address.
    pub fn from_address(mut self, address: impl ToString) -> Self {
        self.address = Some(address.to_string());
        self
    }
}
