//! Figures for the editorial workflow's costs, printed, never asserted:
//! `cargo bench --bench editorial` (SQLite in a temporary folder; set
//! `BENCH_DATABASE_URL=postgres://...` to use PostgreSQL; it must be empty).
//!
//! * appending to the audit log, one transaction an entry (the chain's lock is the cost);
//! * verifying the whole chain;
//! * exporting it as CSV;
//! * a word-level diff and a three-way merge of a long post.

use std::time::Instant;

use rounds::db::{self, ConnectionManager};
use rounds::editorial::{Actor, audit, diff, merge};

fn main() {
    // `cargo test --all-targets` runs bench targets too (without `--bench`): figures are
    // for when someone asks for them.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/editorial.rs: run `cargo bench --bench editorial` for figures");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let mut conn = ConnectionManager::new(&url)
        .expect("url")
        .open()
        .expect("open");
    db::run_migrations(&mut conn).expect("migrate");
    let actor = Actor::operator();
    let entries: usize = std::env::var("BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);

    let started = Instant::now();
    for n in 0..entries {
        db::write_tx(&mut conn, |c| {
            audit::record(
                c,
                &audit::Event::new(&actor, "bench.appended")
                    .blog(1)
                    .subject(format!("entry {n}"))
                    .detail("n", n),
            )
        })
        .expect("append");
    }
    let append = started.elapsed();
    println!(
        "audit append: {entries} entries in {:.2} s ({:.0} entries/s, {:.2} ms each)",
        append.as_secs_f64(),
        entries as f64 / append.as_secs_f64(),
        append.as_secs_f64() * 1000.0 / entries as f64
    );

    let started = Instant::now();
    let result = audit::verify(&mut conn).expect("verify");
    let verify = started.elapsed();
    assert!(result.is_intact());
    println!(
        "audit verify: {} entries in {:.2} s ({:.0} entries/s)",
        result.entries,
        verify.as_secs_f64(),
        result.entries as f64 / verify.as_secs_f64()
    );

    let started = Instant::now();
    let mut out = Vec::new();
    audit::export(
        &mut conn,
        &audit::Filter::default(),
        audit::Format::Csv,
        &mut out,
    )
    .expect("export");
    println!(
        "audit export (CSV): {:.1} MB in {:.2} s",
        out.len() as f64 / 1_000_000.0,
        started.elapsed().as_secs_f64()
    );

    // A long post (about 10,000 words) edited in two places by two people.
    let paragraph = "The trust opened a new ward this winter, and the team worked hard to make it ready for patients and their families. ";
    let base: String = (0..400)
        .map(|i| format!("{paragraph}Paragraph {i}.\n\n"))
        .collect();
    let ours = base.replacen("Paragraph 10.", "Paragraph ten, rewritten.", 1);
    let theirs = base.replacen("Paragraph 390.", "Paragraph three hundred and ninety.", 1);
    let started = Instant::now();
    let pieces = diff::words(&base, &ours);
    println!(
        "word diff of a {}-word post: {:.1} ms ({} pieces)",
        base.split_whitespace().count(),
        started.elapsed().as_secs_f64() * 1000.0,
        pieces.len()
    );
    let started = Instant::now();
    let merged = merge::merge(&base, &ours, &theirs);
    println!(
        "three-way merge of the same post: {:.1} ms (clean: {})",
        started.elapsed().as_secs_f64() * 1000.0,
        merged.is_clean()
    );
}
