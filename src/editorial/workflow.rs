//! Where a post is in sign-off: draft → in review → approved → scheduled or published,
//! and the approvals that record who signed off exactly what.
//!
//! The stage belongs to the post's latest revision. A published post whose latest
//! revision is not what readers see (an editor's change waiting for sign-off) is
//! published, with its changes at the stage they have reached.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{post_approvals, post_workflow, posts};
use crate::domain::posts::{Post, Status};

/// A stage of sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Being written.
    Draft,
    /// Submitted for sign-off.
    InReview,
    /// Signed off: the approval's hash matches the latest revision.
    Approved,
    /// Approved and due to go out at a set time.
    Scheduled,
    /// What readers see is the latest revision.
    Published,
}

impl Stage {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::InReview => "in_review",
            Self::Approved => "approved",
            Self::Scheduled => "scheduled",
            Self::Published => "published",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Self {
        match value {
            "in_review" => Self::InReview,
            "approved" => Self::Approved,
            "scheduled" => Self::Scheduled,
            "published" => Self::Published,
            _ => Self::Draft,
        }
    }

    /// Words for the team's screens.
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::InReview => "In review",
            Self::Approved => "Approved",
            Self::Scheduled => "Scheduled",
            Self::Published => "Published",
        }
    }

    /// The NHS.UK tag colour for the stage.
    pub fn tag_class(self) -> &'static str {
        match self {
            Self::Draft => "nhsuk-tag--grey",
            Self::InReview => "nhsuk-tag--yellow",
            Self::Approved => "nhsuk-tag--blue",
            Self::Scheduled => "nhsuk-tag--purple",
            Self::Published => "nhsuk-tag--green",
        }
    }
}

/// A post's workflow row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = post_workflow, treat_none_as_null = true)]
pub struct Workflow {
    /// The post.
    pub post_id: i64,
    /// See [`Stage`].
    pub stage: String,
    /// The latest revision.
    pub head_revision_id: Option<i64>,
    /// The revision readers see.
    pub live_revision_id: Option<i64>,
    /// The approval in force.
    pub approval_id: Option<i64>,
    /// Who submitted it for sign-off.
    pub submitted_by: Option<i64>,
    /// When.
    pub submitted_at: Option<NaiveDateTime>,
    /// When it is due to go out (UTC).
    pub scheduled_for: Option<NaiveDateTime>,
    /// The revision due to go out.
    pub scheduled_revision_id: Option<i64>,
    /// Who scheduled it.
    pub scheduled_by: Option<i64>,
    /// When its time came during a freeze.
    pub held_at: Option<NaiveDateTime>,
    /// When the row last changed.
    pub updated_at: NaiveDateTime,
}

impl Workflow {
    /// Its stage.
    pub fn stage(&self) -> Stage {
        Stage::parse(&self.stage)
    }

    /// Moves to a stage.
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage.as_str().to_owned();
    }

    /// Forgets any schedule.
    pub fn clear_schedule(&mut self) {
        self.scheduled_for = None;
        self.scheduled_revision_id = None;
        self.scheduled_by = None;
        self.held_at = None;
    }
}

/// The post's workflow (a fresh one if it has none yet: published posts start
/// published, others as drafts).
pub fn get(conn: &mut DbConnection, post: &Post) -> QueryResult<Workflow> {
    let row = post_workflow::table
        .find(post.id)
        .select(Workflow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.unwrap_or_else(|| Workflow {
        post_id: post.id,
        stage: if post.status() == Status::Published {
            Stage::Published
        } else {
            Stage::Draft
        }
        .as_str()
        .to_owned(),
        head_revision_id: None,
        live_revision_id: None,
        approval_id: None,
        submitted_by: None,
        submitted_at: None,
        scheduled_for: None,
        scheduled_revision_id: None,
        scheduled_by: None,
        held_at: None,
        updated_at: crate::domain::now(),
    }))
}

/// Stores the workflow row.
pub fn save(conn: &mut DbConnection, workflow: &Workflow) -> QueryResult<()> {
    let mut row = workflow.clone();
    row.updated_at = crate::domain::now();
    let updated = diesel::update(post_workflow::table.find(row.post_id))
        .set(&row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(post_workflow::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(())
}

/// Locks the post's row until the transaction ends, so two saves of one post run one
/// after the other (PostgreSQL; on SQLite `BEGIN IMMEDIATE` already holds the write
/// lock), and reads it afresh.
pub fn lock_post(conn: &mut DbConnection, post_id: i64) -> QueryResult<Option<Post>> {
    match conn {
        DbConnection::Pg(pg) => posts::table
            .find(post_id)
            .select(Post::as_select())
            .for_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => crate::domain::posts::find(conn, post_id),
    }
}

/// An approval.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = post_approvals)]
pub struct Approval {
    /// Row id.
    pub id: i64,
    /// The post.
    pub post_id: i64,
    /// The revision signed off.
    pub revision_id: i64,
    /// Who signed it off.
    pub approver_id: Option<i64>,
    /// Their name then.
    pub approver_name: String,
    /// The hash of exactly what they signed off.
    pub content_hash: String,
    /// `approved`, or `published_by_owner` when the owner published directly.
    pub kind: String,
    /// When.
    pub created_at: NaiveDateTime,
}

/// Records an approval; returns it.
pub fn record_approval(
    conn: &mut DbConnection,
    post_id: i64,
    revision_id: i64,
    approver: (Option<i64>, &str),
    content_hash: &str,
    kind: &str,
) -> QueryResult<Approval> {
    let id: i64 = crate::on_backend!(conn, |c| diesel::insert_into(post_approvals::table)
        .values((
            post_approvals::post_id.eq(post_id),
            post_approvals::revision_id.eq(revision_id),
            post_approvals::approver_id.eq(approver.0),
            post_approvals::approver_name.eq(approver.1),
            post_approvals::content_hash.eq(content_hash),
            post_approvals::kind.eq(kind),
            post_approvals::created_at.eq(crate::domain::now()),
        ))
        .returning(post_approvals::id)
        .get_result(c))?;
    post_approvals::table
        .find(id)
        .select(Approval::as_select())
        .first(conn)
}

/// The approval with this id.
pub fn approval(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Approval>> {
    post_approvals::table
        .find(id)
        .select(Approval::as_select())
        .first(conn)
        .optional()
}

/// Every approval of a post, newest first.
pub fn approvals_of(conn: &mut DbConnection, post_id: i64) -> QueryResult<Vec<Approval>> {
    post_approvals::table
        .filter(post_approvals::post_id.eq(post_id))
        .order(post_approvals::id.desc())
        .select(Approval::as_select())
        .load(conn)
}

/// A post's stage as a list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageOf {
    /// The post.
    pub post_id: i64,
    /// Its stage.
    pub stage: Stage,
    /// When it is scheduled for, if it is.
    pub scheduled_for: Option<NaiveDateTime>,
    /// When a freeze held it, if one did.
    pub held_at: Option<NaiveDateTime>,
}

/// The stage of each of these posts (for lists), with their scheduled times.
pub fn stages_of(conn: &mut DbConnection, post_ids: &[i64]) -> QueryResult<Vec<StageOf>> {
    let rows: Vec<(i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>)> =
        post_workflow::table
            .filter(post_workflow::post_id.eq_any(post_ids))
            .select((
                post_workflow::post_id,
                post_workflow::stage,
                post_workflow::scheduled_for,
                post_workflow::held_at,
            ))
            .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(post_id, stage, scheduled_for, held_at)| StageOf {
            post_id,
            stage: Stage::parse(&stage),
            scheduled_for,
            held_at,
        })
        .collect())
}

/// Scheduled posts whose time has passed (held by a freeze, or not yet picked up).
pub fn due_schedules(conn: &mut DbConnection) -> QueryResult<Vec<Workflow>> {
    post_workflow::table
        .filter(post_workflow::stage.eq(Stage::Scheduled.as_str()))
        .filter(post_workflow::scheduled_for.le(crate::domain::now()))
        .select(Workflow::as_select())
        .load(conn)
}
