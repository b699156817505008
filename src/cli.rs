//! The `rounds` command line. Scripts depend on these subcommands and flags: keep them
//! stable.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{CONFIG_ENV, Settings};
use crate::db::{self, DbConnection};
use crate::domain::blogs::{self, NewBlogInput};
use crate::domain::names::{EmailAddress, Handle, Username, without_controls};
use crate::domain::password::Password;
use crate::domain::posts::{PostFields, PostInput};
use crate::domain::users;
use crate::editorial::revisions::Kind;
use crate::editorial::{Actor, audit, freeze};
use crate::error::AppError;
use crate::federation::mentions::Mentions;
use crate::publishing;
use crate::startup::Application;

/// A self-hosted microblog and newsletter server for NHS leaders.
#[derive(Parser)]
#[command(name = "rounds", version, about)]
struct Cli {
    /// TOML configuration file (also ROUNDS_CONFIG).
    #[arg(long, global = true, env = CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (applies migrations first).
    Serve,
    /// Run the background job workers only (deliveries, email), for nodes that serve
    /// no web traffic. `serve` runs them too.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage blogs.
    #[command(subcommand)]
    Blog(BlogCommand),
    /// Publish posts.
    #[command(subcommand)]
    Post(PostCommand),
    /// Check and export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Freeze publishing across the instance (pre-election periods), or lift the freeze.
    #[command(subcommand)]
    Freeze(FreezeCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit log's hash chain. Exit status 0 when intact; 1, with the first
    /// broken entry named, when not.
    Verify,
    /// Write the audit log (oldest first) to standard output or a file.
    Export {
        /// csv or json.
        #[arg(long)]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FreezeCommand {
    /// Freeze publishing, with the message every team page shows.
    Start {
        /// Why and until when.
        #[arg(long)]
        message: String,
    },
    /// Lift the freeze; held scheduled posts go out at once.
    Lift,
    /// Say whether publishing is frozen.
    Status,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add(UserAdd),
    /// Turn off two-factor sign-in for an account that lost its authenticator.
    DisableTwoFactor {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
}

#[derive(Args)]
struct UserAdd {
    /// Sign-in name: letters, numbers, dots, hyphens, underscores.
    #[arg(long)]
    username: String,
    /// Email address.
    #[arg(long)]
    email: String,
    /// Make the account an instance administrator.
    #[arg(long)]
    admin: bool,
    /// Read the password from standard input (required: passwords never go on the
    /// command line, where other users can see them).
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum BlogCommand {
    /// Create a blog owned by an existing account.
    Add(BlogAdd),
    /// Change a blog's fediverse settings.
    Set(BlogSet),
}

#[derive(Args)]
struct BlogSet {
    /// The blog's handle.
    #[arg(long)]
    handle: String,
    /// Which replies appear without moderation: held (none, the default), followers, or
    /// open (all).
    #[arg(long, value_name = "held|followers|open")]
    replies: Option<String>,
    /// Whether new followers wait for the team's approval.
    #[arg(long, value_name = "true|false")]
    approve_followers: Option<bool>,
    /// Whether articles go to the fediverse in full (as Notes) rather than as a title,
    /// summary and link.
    #[arg(long, value_name = "true|false")]
    articles_as_notes: Option<bool>,
    /// Whether fediverse servers may list the blog in directories and search.
    #[arg(long, value_name = "true|false")]
    discoverable: Option<bool>,
}

#[derive(Args)]
struct BlogAdd {
    /// The handle: `ceo` makes `/@ceo` and `@ceo@your.domain`.
    #[arg(long)]
    handle: String,
    /// The leader's name as shown.
    #[arg(long)]
    name: String,
    /// The owning account's username.
    #[arg(long)]
    owner: String,
    /// The leader's role, e.g. "Chief Executive, Example NHS Foundation Trust".
    #[arg(long)]
    title: Option<String>,
    /// The leader's organisation, shown separately on the about page.
    #[arg(long)]
    organisation: Option<String>,
}

#[derive(Subcommand)]
enum PostCommand {
    /// Publish a Markdown file as a post; prints its URL. Without a title it is a short
    /// update; with one, an article.
    Publish(PostPublish),
}

#[derive(Args)]
struct PostPublish {
    /// The blog's handle.
    #[arg(long)]
    blog: String,
    /// Title (makes the post an article).
    #[arg(long)]
    title: Option<String>,
    /// Summary (articles only).
    #[arg(long)]
    summary: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A content warning shown before the text (Mastodon hides the text behind it).
    #[arg(long)]
    content_warning: Option<String>,
    /// The web address under the blog (default: made from the title or text).
    #[arg(long)]
    slug: Option<String>,
    /// The author's username (default: the blog's owner).
    #[arg(long)]
    author: Option<String>,
    /// The Markdown file, or `-` for standard input.
    file: PathBuf,
}

/// The exit status while publishing is frozen (try again once it is lifted).
const EXIT_FROZEN: u8 = 3;

/// An error for the person at the terminal.
#[derive(Debug)]
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }

    fn runtime(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<AppError> for Failure {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Validation(errors) => Self::usage(
                errors
                    .iter()
                    .map(|e| {
                        if e.field.is_empty() {
                            e.message.clone()
                        } else {
                            format!("{}: {}", e.field, e.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            AppError::Conflict(message) => Self::usage(message),
            other => Self::runtime(crate::error::chain(&other)),
        }
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(error: diesel::result::Error) -> Self {
        Self::runtime(format!("database error: {error}"))
    }
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(settings),
        Command::Worker => worker(settings),
        command => {
            // Other commands log only problems, so their output stays script-friendly.
            let mut quiet = settings.clone();
            if quiet.log_level == "info" {
                quiet.log_level = "warn".into();
            }
            crate::telemetry::init(&quiet);
            run_offline(&settings, command)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the runtime: {e}")))
}

fn worker(settings: Settings) -> Result<(), Failure> {
    crate::telemetry::init(&settings);
    runtime()?
        .block_on(crate::startup::run_workers(settings))
        .map_err(|e| Failure::runtime(e.to_string()))
}

fn serve(settings: Settings) -> Result<(), Failure> {
    crate::telemetry::init(&settings);
    runtime()?.block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| Failure::runtime(e.to_string()))?;
        let settings = app.settings();
        let url = settings.base_url.clone();
        let bound = std::net::SocketAddr::new(settings.bind.ip(), app.port());
        tracing::info!(%url, %bound, "rounds is running");
        let pool = db::build_pool(&settings.effective_database_url(), 1)
            .map_err(Failure::runtime)?;
        let no_users = tokio::task::spawn_blocking(move || {
            pool.get().ok().and_then(|mut c| users::count(&mut c).ok()) == Some(0)
        })
        .await
        .unwrap_or(false);
        if no_users {
            tracing::info!(
                "no accounts yet: create the first administrator with \
                 `printf '%s' 'a long password' | rounds user add --username admin --email you@example.nhs.uk --admin --password-stdin`"
            );
        }
        app.run_until_stopped()
            .await
            .map_err(|e| Failure::runtime(e.to_string()))
    })
}

/// Commands that work on the database directly, with or without a server running.
fn run_offline(settings: &Settings, command: Command) -> Result<(), Failure> {
    if let Err(e) = std::fs::create_dir_all(&settings.data_dir) {
        return Err(Failure::runtime(format!(
            "cannot create data folder {}: {e}",
            settings.data_dir.display()
        )));
    }
    let manager = db::ConnectionManager::new(&settings.effective_database_url())
        .map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(dir) = Path::new(db::sqlite_path(&settings.effective_database_url())).parent()
        && !dir.as_os_str().is_empty()
        && !settings.effective_database_url().starts_with("postgres")
    {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut conn = manager
        .open()
        .map_err(|e| Failure::runtime(format!("cannot open the database: {e}")))?;
    let applied = db::run_migrations(&mut conn).map_err(Failure::runtime)?;
    match command {
        Command::Migrate => {
            if applied.is_empty() {
                println!("The database is up to date.");
            } else {
                for name in applied {
                    println!("applied {name}");
                }
            }
            Ok(())
        }
        Command::User(UserCommand::Add(args)) => user_add(&mut conn, args),
        Command::User(UserCommand::DisableTwoFactor { username }) => {
            let user = users::find_by_username(&mut conn, &username)?
                .ok_or_else(|| Failure::usage(format!("there is no account named {username}")))?;
            db::write_tx(&mut conn, |conn| {
                users::set_totp(conn, user.id, None, false)?;
                audit::record(
                    conn,
                    &audit::Event::new(&Actor::operator(), audit::actions::TWO_FACTOR_DISABLED)
                        .subject(user.username.clone()),
                )
                .map(|_| ())
            })?;
            println!("Two-factor sign-in is off for {}.", user.username);
            Ok(())
        }
        Command::Blog(BlogCommand::Add(args)) => blog_add(settings, &mut conn, args),
        Command::Blog(BlogCommand::Set(args)) => blog_set(settings, &mut conn, args),
        Command::Post(PostCommand::Publish(args)) => post_publish(settings, &mut conn, args),
        Command::Audit(AuditCommand::Verify) => audit_verify(&mut conn),
        Command::Audit(AuditCommand::Export { format, output }) => {
            audit_export(&mut conn, &format, output.as_deref())
        }
        Command::Freeze(command) => freeze_command(&mut conn, command),
        Command::Serve | Command::Worker => Err(Failure::runtime(
            "serve and worker are not offline commands",
        )),
    }
}

fn user_add(conn: &mut DbConnection, args: UserAdd) -> Result<(), Failure> {
    if !args.password_stdin {
        return Err(Failure::usage(
            "give the password on standard input with --password-stdin, e.g. \
             printf '%s' 'a long password' | rounds user add ... --password-stdin",
        ));
    }
    let username =
        Username::parse(&args.username).map_err(|e| Failure::usage(format!("username: {e}")))?;
    let email =
        EmailAddress::parse(&args.email).map_err(|e| Failure::usage(format!("email: {e}")))?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::runtime(format!("cannot read the password: {e}")))?;
    // One trailing newline is what `echo` adds; anything else is part of the password.
    let raw = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(&input);
    let password = Password::parse(raw).map_err(|e| Failure::usage(format!("password: {e}")))?;
    let user =
        users::create(conn, &username, &email, &password, args.admin).map_err(|e| match e {
            users::CreateUserError::Taken => Failure::usage(e.to_string()),
            other => Failure::runtime(other.to_string()),
        })?;
    audit::record(
        conn,
        &audit::Event::new(&Actor::operator(), audit::actions::ACCOUNT_CREATED)
            .subject(user.username.clone())
            .detail("admin", user.is_admin),
    )?;
    println!(
        "Created {}account {} <{}>.",
        if user.is_admin { "administrator " } else { "" },
        user.username,
        user.email
    );
    Ok(())
}

fn blog_add(settings: &Settings, conn: &mut DbConnection, args: BlogAdd) -> Result<(), Failure> {
    let handle = Handle::parse(&args.handle).map_err(|e| Failure::usage(format!("handle: {e}")))?;
    let name = without_controls(&args.name);
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Failure::usage(
            "name: enter the leader's name (up to 100 characters)",
        ));
    }
    let clean =
        |value: Option<String>, what: &str, max: usize| -> Result<Option<String>, Failure> {
            match value
                .map(|v| without_controls(&v).trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                Some(v) if v.chars().count() > max => Err(Failure::usage(format!(
                    "{what} must be {max} characters or fewer"
                ))),
                other => Ok(other),
            }
        };
    let title = clean(args.title, "title", 100)?;
    let organisation = clean(args.organisation, "organisation", 150)?;
    let owner = users::find_by_username(conn, &args.owner)?.ok_or_else(|| {
        Failure::usage(format!("owner: there is no account named {}", args.owner))
    })?;
    let blog = blogs::create(
        conn,
        &NewBlogInput {
            handle: &handle,
            display_name: name,
            role_title: title.as_deref(),
            organisation: organisation.as_deref(),
            owner_id: owner.id,
        },
    )
    .map_err(|e| match e {
        blogs::CreateBlogError::Taken(_) => Failure::usage(e.to_string()),
        other => Failure::runtime(other.to_string()),
    })?;
    crate::federation::keys::blog_keys(conn, blog.id)
        .map_err(|e| Failure::runtime(format!("the blog's signing key: {e}")))?;
    audit::record(
        conn,
        &audit::Event::new(&Actor::operator(), audit::actions::BLOG_CREATED)
            .blog(blog.id)
            .subject(format!("@{}", blog.handle))
            .detail("owner", &owner.username),
    )?;
    println!(
        "Created blog @{}@{} at {}",
        blog.handle,
        settings.domain(),
        settings.url(&blog.path())
    );
    Ok(())
}

fn blog_set(settings: &Settings, conn: &mut DbConnection, args: BlogSet) -> Result<(), Failure> {
    use crate::federation::moderation::ReplyPolicy;
    let handle = Handle::parse(&args.handle).map_err(|e| Failure::usage(format!("handle: {e}")))?;
    let policy = args
        .replies
        .as_deref()
        .map(|r| {
            ReplyPolicy::parse(r).ok_or_else(|| {
                Failure::usage(format!("replies: must be held, followers or open, not {r}"))
            })
        })
        .transpose()?;
    if policy.is_none()
        && args.approve_followers.is_none()
        && args.articles_as_notes.is_none()
        && args.discoverable.is_none()
    {
        return Err(Failure::usage(
            "say what to change: --replies, --approve-followers, --articles-as-notes or --discoverable",
        ));
    }
    let blog = blogs::find_by_handle(conn, handle.as_str())?
        .ok_or_else(|| Failure::usage(format!("handle: there is no blog @{handle}")))?;
    let options = crate::federation::pages::BlogOptions {
        policy,
        approve_followers: args.approve_followers,
        articles_as_notes: args.articles_as_notes,
        discoverable: args.discoverable,
    };
    crate::federation::pages::set_blog_options(
        conn,
        settings,
        &Actor::operator(),
        blog.id,
        &options,
    )?;
    let blog = blogs::find(conn, blog.id)?.ok_or_else(|| Failure::runtime("the blog vanished"))?;
    println!(
        "@{}: replies {}, followers {}, articles {}, {}",
        blog.handle,
        blog.reply_policy,
        if blog.manually_approves_followers {
            "approved by hand"
        } else {
            "accepted at once"
        },
        if blog.articles_as_notes {
            "sent in full"
        } else {
            "sent as title, summary and link"
        },
        if blog.discoverable {
            "discoverable"
        } else {
            "not listed"
        },
    );
    Ok(())
}

fn post_publish(
    settings: &Settings,
    conn: &mut DbConnection,
    args: PostPublish,
) -> Result<(), Failure> {
    let markdown = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::runtime(format!("cannot read standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.file.display())))?
    };
    let handle = Handle::parse(&args.blog).map_err(|e| Failure::usage(format!("blog: {e}")))?;
    let blog = blogs::find_by_handle(conn, handle.as_str())?
        .ok_or_else(|| Failure::usage(format!("blog: there is no blog @{handle}")))?;
    let tags = args.tags.join(",");
    let input = PostInput::parse(&PostFields {
        title: args.title.as_deref().unwrap_or(""),
        summary: args.summary.as_deref().unwrap_or(""),
        body: &markdown,
        tags: &tags,
        slug: args.slug.as_deref().unwrap_or(""),
        content_warning: args.content_warning.as_deref().unwrap_or(""),
    })
    .map_err(AppError::Validation)?;

    // The post is written and published as its author (by default the owner), under
    // the same rules as the web: the owner publishes directly; an editor only where the
    // blog has turned owner sign-off off.
    let author = match &args.author {
        Some(name) => users::find_by_username(conn, name)?
            .ok_or_else(|| Failure::usage(format!("author: there is no account named {name}")))?,
        None => {
            let owner = blogs::owner_of(conn, blog.id)?
                .ok_or_else(|| Failure::usage(format!("blog: @{} has no owner", blog.handle)))?;
            users::find(conn, owner)?
                .ok_or_else(|| Failure::usage(format!("blog: @{} has no owner", blog.handle)))?
        }
    };
    if blogs::role_of(conn, blog.id, author.id)?.is_none() && !author.is_admin {
        return Err(Failure::usage(format!(
            "author: {} is not on the team of @{}",
            author.username, blog.handle
        )));
    }
    if let Some(freeze) = freeze::current(conn)? {
        return Err(Failure {
            message: freeze::frozen_message(&freeze),
            code: EXIT_FROZEN,
        });
    }
    let actor = Actor::command(&author);
    let mentions = resolve_mentions(settings, &input.body_markdown)?;
    let saved = publishing::save(
        conn,
        &publishing::SaveRequest {
            blog: &blog,
            post: None,
            actor: &actor,
            input: &input,
            base_revision: None,
            kind: Kind::Command,
            publish: true,
            mentions: &mentions,
        },
    )
    .map_err(|e| match e {
        AppError::Forbidden => Failure::usage(format!(
            "author: {} may not publish on @{}",
            author.username, blog.handle
        )),
        AppError::Conflict(message) => Failure::usage(format!(
            "{message} (or publish with --author set to the blog's owner)"
        )),
        other => other.into(),
    })?;
    let publishing::Saved::Saved { post, .. } = saved else {
        return Err(Failure::runtime("the post was not saved"));
    };
    let path = post
        .path(&blog.handle)
        .ok_or_else(|| Failure::runtime("the published post has no address"))?;
    println!("{}", settings.url(&path));
    Ok(())
}

/// Looks up the accounts a post mentions, as the server does before publishing, with
/// the federation settings of this instance (its own signing actor, its address rules).
/// Only a text with mentions starts the network machinery.
fn resolve_mentions(settings: &Settings, markdown: &str) -> Result<Mentions, Failure> {
    if crate::domain::mentions::find(markdown).mentions.is_empty() {
        return Ok(Mentions::none());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = std::sync::Arc::new(settings.clone());
    runtime()?.block_on(async move {
        let pool =
            db::build_pool(&settings.effective_database_url(), 2).map_err(Failure::runtime)?;
        let federation = crate::federation::build(settings, pool)
            .await
            .map_err(Failure::runtime)?;
        Ok(crate::federation::mentions::resolve(&federation, markdown).await)
    })
}

fn audit_verify(conn: &mut DbConnection) -> Result<(), Failure> {
    let result = audit::verify(conn)?;
    match &result.first_broken {
        None => {
            println!("The audit log is intact: {} entries.", result.entries);
            if let Some(hash) = &result.head_hash {
                println!("Latest entry's hash: {hash}");
            }
            Ok(())
        }
        Some((id, reason)) => Err(Failure::runtime(format!(
            "the audit log is not intact: first broken entry {id}: {reason}"
        ))),
    }
}

fn audit_export(
    conn: &mut DbConnection,
    format: &str,
    output: Option<&Path>,
) -> Result<(), Failure> {
    let format = audit::Format::parse(format)
        .ok_or_else(|| Failure::usage("format: must be csv or json"))?;
    let filter = audit::Filter::default();
    let written = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
            let mut out = std::io::BufWriter::new(file);
            let n = audit::export(conn, &filter, format, &mut out)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            std::io::Write::flush(&mut out)
                .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())))?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = audit::export(conn, &filter, format, &mut out)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            std::io::Write::flush(&mut out)
                .map_err(|e| Failure::runtime(format!("cannot write: {e}")))?;
            n
        }
    };
    if output.is_some() {
        println!("Exported {written} entries.");
    }
    Ok(())
}

fn freeze_command(conn: &mut DbConnection, command: FreezeCommand) -> Result<(), Failure> {
    let actor = Actor::operator();
    match command {
        FreezeCommand::Start { message } => {
            let message = freeze::parse_message(&message)
                .map_err(|e| Failure::usage(format!("message: {e}")))?;
            db::write_tx(conn, |conn| freeze::start(conn, &actor, &message))?;
            println!("Publishing is frozen.");
        }
        FreezeCommand::Lift => {
            let released = db::write_tx(conn, |conn| freeze::lift(conn, &actor))?;
            println!("The freeze is lifted; {released} held post(s) will go out now.");
        }
        FreezeCommand::Status => match freeze::current(conn)? {
            Some(f) => println!("Publishing is frozen: {}", f.message),
            None => println!("Publishing is not frozen."),
        },
    }
    Ok(())
}
