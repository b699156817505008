//! A fediverse peer on loopback (tests/tools/fedi_peer.py): signs with `httpsig` and
//! `http-message-signatures`, verifies what we send it, and records its inbox.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers;

pub struct Peer {
    child: Child,
    pub base: String,
    /// What an actor's name is appended to for its id.
    actor_prefix: String,
    client: reqwest::Client,
}

impl Peer {
    pub fn start() -> Self {
        Self::start_tool("fedi_peer.py", &[])
    }

    /// Starts a peer from `tests/tools/` that speaks fedi_peer.py's control protocol
    /// (`/control/send`, `/received`) and prints `{"base": ..}` on its first line.
    pub fn start_tool(script: &str, args: &[&str]) -> Self {
        let (child, ready) = helpers::start_tool(script, args);
        let base = ready["base"].as_str().expect("base").to_owned();
        let actor_prefix = ready["actor_prefix"]
            .as_str()
            .map_or_else(|| format!("{base}/users/"), str::to_owned);
        Self {
            child,
            base,
            actor_prefix,
            client: reqwest::Client::new(),
        }
    }

    /// An actor's id on the peer.
    pub fn actor(&self, name: &str) -> String {
        format!("{}{name}", self.actor_prefix)
    }

    /// Signs (as `options` say) and sends an activity; the status our server answered.
    pub async fn send(&self, options: Value) -> (u16, String) {
        let mut options = options;
        options["base"] = Value::String(self.base.clone());
        let answer: Value = self
            .client
            .post(format!("{}/control/send", self.base))
            .json(&options)
            .send()
            .await
            .expect("control")
            .json()
            .await
            .expect("json");
        (
            u16::try_from(answer["status"].as_u64().unwrap_or(0)).unwrap_or(0),
            answer["body"].as_str().unwrap_or("").to_owned(),
        )
    }

    /// Sends as `actor` to `inbox`, signed the usual way.
    pub async fn deliver(&self, actor: &str, inbox: &str, activity: Value) -> u16 {
        self.send(json!({ "actor": actor, "url": inbox, "activity": activity }))
            .await
            .0
    }

    pub async fn control(&self, what: &str, body: Value) {
        let response = self
            .client
            .post(format!("{}/control/{what}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert!(response.status().is_success());
    }

    pub async fn received(&self) -> Vec<Value> {
        self.client
            .get(format!("{}/received", self.base))
            .send()
            .await
            .expect("received")
            .json()
            .await
            .expect("json")
    }

    pub async fn signed_fetches(&self) -> Vec<Value> {
        self.client
            .get(format!("{}/signed-fetches", self.base))
            .send()
            .await
            .expect("fetches")
            .json()
            .await
            .expect("json")
    }

    /// Waits until a delivery of this activity type arrives; returns it.
    pub async fn wait_for(&self, kind: &str) -> Value {
        self.wait_for_n(kind, 1).await.remove(0)
    }

    /// Waits until `n` deliveries of this activity type have arrived; returns them all.
    pub async fn wait_for_n(&self, kind: &str, n: usize) -> Vec<Value> {
        self.wait_for_matching(kind, n, |_| true).await
    }

    /// Waits until `n` deliveries of this activity type whose activity passes `check`
    /// have arrived; returns them all. For tests where other deliveries of the same type
    /// may arrive first (a post's own Create racing a follow, say).
    pub async fn wait_for_matching(
        &self,
        kind: &str,
        n: usize,
        check: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<Value> = self
                .received()
                .await
                .into_iter()
                .filter(|r| r["activity"]["type"] == kind && check(&r["activity"]))
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} arrived at the peer (got {})",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
