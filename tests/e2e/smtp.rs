//! The SMTP peer (tests/tools/smtp_peer.py, aiosmtpd on loopback): stores what it is
//! sent, answers failures when told, parses messages as MIME with Python's `email`.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers;

/// A running SMTP peer, killed on drop.
pub struct SmtpPeer {
    child: Child,
    /// The SMTP port on 127.0.0.1.
    pub port: u16,
    control: String,
    client: reqwest::Client,
}

/// One stored message, as the peer parsed it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    /// Leaf parts: (content type, decoded body).
    pub parts: Vec<(String, String)>,
    pub defects: Vec<String>,
}

impl Received {
    /// The first header of that name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body of the first part of that content type.
    pub fn part(&self, content_type: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|(t, _)| t == content_type)
            .map(|(_, b)| b.as_str())
    }
}

/// The peer's counts.
#[derive(Debug, Clone)]
pub struct Stats {
    pub total: usize,
    pub distinct: usize,
    pub duplicates: Vec<String>,
    pub held: usize,
    pub in_data: usize,
}

impl SmtpPeer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra arguments (e.g. `--starttls DIR`).
    pub fn start_with(args: &[&str]) -> Self {
        // The control client may be built before any server installs the TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (child, ready) = helpers::start_tool("smtp_peer.py", args);
        let port = |key: &str| u16::try_from(ready[key].as_u64().expect("port")).expect("port");
        Self {
            port: port("smtp"),
            control: format!("http://127.0.0.1:{}", port("control")),
            child,
            client: reqwest::Client::new(),
        }
    }

    /// The `smtp_url` for a server sending here in plain text.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Changes what the peer does: `fail`, `reject`, `hold_final` (see the script).
    pub async fn control(&self, order: Value) {
        let response = self
            .client
            .post(format!("{}/control", self.control))
            .json(&order)
            .send()
            .await
            .expect("control");
        assert!(response.status().is_success());
    }

    /// Refuses mail to these addresses with 550 at RCPT.
    pub async fn reject(&self, addresses: &[&str]) {
        self.control(json!({ "reject": addresses })).await;
    }

    /// How many times a RCPT TO named `to` (accepted or not).
    pub async fn attempts(&self, to: &str) -> u64 {
        let value: Value = self
            .client
            .get(format!("{}/attempts", self.control))
            .query(&[("to", to)])
            .send()
            .await
            .expect("attempts")
            .json()
            .await
            .expect("json");
        value["attempts"].as_u64().expect("attempts")
    }

    pub async fn stats(&self) -> Stats {
        let value: Value = self
            .client
            .get(format!("{}/stats", self.control))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        let count = |key: &str| usize::try_from(value[key].as_u64().expect(key)).expect(key);
        Stats {
            total: count("total"),
            distinct: count("distinct"),
            duplicates: value["duplicates"]
                .as_array()
                .expect("duplicates")
                .iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect(),
            held: count("held"),
            in_data: count("in_data"),
        }
    }

    /// Messages received for `to` (all messages with `None`).
    pub async fn messages(&self, to: Option<&str>) -> Vec<Received> {
        let mut request = self.client.get(format!("{}/messages", self.control));
        if let Some(to) = to {
            request = request.query(&[("to", to)]);
        }
        let list: Vec<Value> = request
            .send()
            .await
            .expect("messages")
            .json()
            .await
            .expect("json");
        list.into_iter()
            .map(|m| {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let parsed = &m["parsed"];
                Received {
                    mail_from: m["mail_from"].as_str().unwrap_or_default().to_owned(),
                    rcpt_tos: strings(&m["rcpt_tos"]),
                    raw: m["raw"].as_str().unwrap_or_default().to_owned(),
                    content_type: parsed["content_type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    headers: parsed["headers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|h| {
                            (
                                h[0].as_str().unwrap_or_default().to_owned(),
                                h[1].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                    parts: parsed["parts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            (
                                p["content_type"].as_str().unwrap_or_default().to_owned(),
                                p["body"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                    defects: strings(&parsed["defects"]),
                }
            })
            .collect()
    }

    /// Waits until `n` messages for `to` have arrived; returns them.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self.messages(Some(to)).await;
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages for {to} arrived at the SMTP peer",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the peer's counts pass `check`; returns them.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let stats = self.stats().await;
            if check(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP peer never got to {what}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Peers started for servers that `e2e!` builds, until their test takes them.
static PEERS: std::sync::Mutex<Vec<SmtpPeer>> = std::sync::Mutex::new(Vec::new());

/// For `e2e! { with |s| smtp::attach(s); .. }`: starts a peer and points the server at it.
pub fn attach(settings: &mut rounds::config::Settings) {
    let peer = SmtpPeer::start();
    settings.smtp_url = rounds::config::Secret::new(peer.url());
    PEERS.lock().expect("peers").push(peer);
}

/// As [`attach`], with TLS and AUTH: `--starttls` or `--smtps` (the peer's test CA is
/// trusted through `smtp_ca_file`).
pub fn attach_tls(settings: &mut rounds::config::Settings, mode: &str) {
    let folder = settings.data_dir.join("smtp-tls");
    std::fs::create_dir_all(&folder).expect("folder");
    let peer = SmtpPeer::start_with(&[mode, folder.to_str().expect("path")]);
    let scheme = if mode == "--smtps" { "smtps" } else { "smtp" };
    settings.smtp_url = rounds::config::Secret::new(format!(
        "{scheme}://rounds:secret%20pass@127.0.0.1:{}",
        peer.port
    ));
    settings.smtp_ca_file = folder.join("ca.pem");
    PEERS.lock().expect("peers").push(peer);
}

/// The peer `attach` started for this test's server.
pub fn peer_of(app: &helpers::TestApp) -> SmtpPeer {
    let mut peers = PEERS.lock().expect("peers");
    let at = peers
        .iter()
        .position(|p| {
            app.settings
                .smtp_url
                .expose()
                .contains(&format!(":{}", p.port))
        })
        .expect("the server was attached to an SMTP peer");
    peers.remove(at)
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
