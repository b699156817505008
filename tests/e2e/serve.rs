//! `rounds serve` as an operator runs it: a process on a fresh data folder, structured
//! logs, readiness, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::random_hex;

/// Reads log lines until one mentions the bound address; returns it.
fn bound_address(lines: &mut impl Iterator<Item = String>, log: &mut Vec<String>) -> String {
    for line in lines.by_ref() {
        log.push(line.clone());
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
            && value["message"] == "rounds is running"
        {
            return value["bound"].as_str().expect("bound address").to_owned();
        }
    }
    panic!("the server never said it was running:\n{}", log.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_an_empty_folder_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join(format!("data-{}", random_hex(4)));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rounds"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROUNDS_BIND", "127.0.0.1:0")
        .env("ROUNDS_DATA_DIR", &data)
        .env("ROUNDS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rounds serve");
    let started = Instant::now();
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let mut log = Vec::new();
    let address = bound_address(&mut lines, &mut log);

    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    eprintln!(
        "first response {} ms after spawn",
        started.elapsed().as_millis()
    );
    let home = client
        .get(format!("http://{address}/"))
        .send()
        .await
        .expect("home");
    assert_eq!(home.status(), reqwest::StatusCode::OK);
    assert!(
        data.join("rounds.db").exists(),
        "the default database is a SQLite file in the data folder"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    log.extend(lines);
    assert!(exit.success(), "exit {exit:?}; log:\n{}", log.join("\n"));
    // Every line is a JSON object; the request and the stop were logged.
    for line in &log {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    assert!(
        log.iter().any(|l| l.contains("\"server stopped\"")),
        "{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("/readyz")),
        "requests are logged:\n{}",
        log.join("\n")
    );
}
