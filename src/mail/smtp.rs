//! SMTP delivery that records a message as sent at the one moment that makes a crash
//! neither lose nor duplicate it: after the server has the whole message, before it has
//! the final `.` that makes it accept the message.
//!
//! Each message goes MAIL, RCPT, DATA, the content, and then the `\r\n.\r\n` terminator
//! is held back by a [`Gate`] under the TLS layer (lettre's low-level
//! `AsyncSmtpConnection` runs on top of it). While the terminator is held, the caller
//! commits the job as sent; only after the commit returns are the held bytes written to
//! the socket, straight from the thread that committed. If the process dies before the
//! commit, the server sees the connection close in the middle of DATA and discards the
//! message (RFC 5321 §4.1.1.4: only the final `.` makes it responsible for the
//! message), and the job runs again: no duplicate. If it dies after the commit, the
//! terminator is already in the kernel's socket buffer, and the kernel sends it even
//! though the process is gone: no loss.
//!
//! The residual window is the few microseconds between the database making the commit
//! durable and the `write` of the held bytes returning (on PostgreSQL, plus the trip of
//! the commit's acknowledgement back over the socket): a `kill -9` exactly there loses
//! that one message. A second, rarer window is the server's answer to the final `.`: a
//! 4xx or 5xx there undoes the commit (retry or bounce), but a crash between the commit
//! and that answer keeps the job finished; and a connection that fails after the `.`
//! with no answer is retried, so such a message may arrive twice (RFC 1047: duplicates
//! rather than loss).
//!
//! Connections are pooled (idle ones are reused) for throughput, with implicit TLS
//! (`smtps`), STARTTLS or plain TCP, and AUTH from the URL.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`smtps://`, usually port 465).
    Tls,
    /// Plain, then STARTTLS, which must be offered (`smtp://`, usually port 587).
    StartTls,
    /// Plain TCP (`smtp://...?tls=none`, a relay on the same machine or network).
    None,
}

/// Where a message failed, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting, TLS, EHLO, AUTH, MAIL FROM, DATA: about us or the server, not the
    /// recipient.
    Session,
    /// RCPT TO: about the recipient's address.
    Recipient,
    /// The reply to the final `.`, after the job was recorded as sent.
    Final,
}

/// Why a message was not delivered.
#[derive(Debug)]
pub struct Failure {
    /// Where.
    pub stage: Stage,
    /// The SMTP reply was 5xx (refused for good).
    pub permanent: bool,
    /// The SMTP reply was 4xx (worth trying later); with neither, a network error.
    pub transient: bool,
    /// What happened.
    pub message: String,
}

impl Failure {
    fn from_lettre(stage: Stage, error: &lettre::transport::smtp::Error) -> Self {
        Self {
            stage,
            permanent: error.is_permanent(),
            transient: error.is_transient(),
            message: error.to_string(),
        }
    }

    fn other(stage: Stage, message: impl Into<String>) -> Self {
        Self {
            stage,
            permanent: false,
            transient: false,
            message: message.into(),
        }
    }
}

/// What became of one message.
#[derive(Debug)]
pub enum Sent {
    /// The server accepted it; the job was recorded as sent before it could.
    Delivered,
    /// It was not delivered. With `committed`, the job had been recorded as sent and the
    /// caller must undo that (the outcome it reports does).
    Failed {
        /// Why.
        failure: Failure,
        /// Whether the commit had happened.
        committed: bool,
    },
}

/// Sends messages over pooled SMTP connections, committing each before its final `.`.
pub struct SmtpSender {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    tls: Option<TlsParameters>,
    hello: ClientId,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

struct Connection {
    smtp: AsyncSmtpConnection,
    gate: Arc<Shared>,
}

impl SmtpSender {
    /// A sender for the server; nothing is connected until the first message.
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        tls: Option<TlsParameters>,
        max_idle: usize,
    ) -> Self {
        Self {
            host,
            port,
            security,
            credentials,
            tls,
            hello: ClientId::default(),
            timeout: Duration::from_secs(60),
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    /// Sends `message` to the envelope's recipients. `commit` runs (on a blocking thread)
    /// when the server has everything but the final `.`, held in the [`Terminator`] it is
    /// given: it records the job as sent and then sends the terminator, or withholds it
    /// if the job could not be recorded.
    pub async fn send<F>(&self, envelope: &Envelope, message: &[u8], commit: F) -> Sent
    where
        F: FnOnce(Terminator) -> Release + Send + 'static,
    {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let reused = idle.is_some();
        let mut connection = match idle {
            Some(connection) => connection,
            None => match self.connect().await {
                Ok(connection) => connection,
                Err(failure) => {
                    return Sent::Failed {
                        failure,
                        committed: false,
                    };
                }
            },
        };
        // A pooled connection the server has since closed fails on MAIL FROM; one fresh
        // connection is worth a try before the message counts as deferred.
        let envelope_sent = match start(&mut connection, envelope, message).await {
            Err(failure) if reused && failure.stage == Stage::Session && !failure.permanent => {
                match self.connect().await {
                    Ok(fresh) => {
                        connection = fresh;
                        start(&mut connection, envelope, message).await
                    }
                    Err(failure) => Err(failure),
                }
            }
            other => other,
        };
        if let Err(failure) = envelope_sent {
            connection.smtp.abort().await;
            return Sent::Failed {
                failure,
                committed: false,
            };
        }
        let (result, committed) = finish(&mut connection, message, commit, self.timeout).await;
        match result {
            Ok(()) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.max_idle
                {
                    idle.push(connection);
                }
                Sent::Delivered
            }
            Err(failure) => {
                // Anything still held must never go out, and QUIT must not wait behind it.
                if !committed {
                    connection.gate.poison();
                }
                connection.smtp.abort().await;
                Sent::Failed { failure, committed }
            }
        }
    }

    async fn connect(&self) -> Result<Connection, Failure> {
        let session = |e: &lettre::transport::smtp::Error| Failure::from_lettre(Stage::Session, e);
        let connected = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| Failure::other(Stage::Session, "timed out connecting to the SMTP server"))?
        .map_err(|e| Failure::other(Stage::Session, format!("cannot connect: {e}")))?;
        let _ = connected.set_nodelay(true);
        let gate = Arc::new(Shared {
            tcp: connected,
            state: Mutex::new(GateState::default()),
            held: Notify::new(),
        });
        let bottom = Box::new(Gate(gate.clone()));
        let stream: Box<dyn AsyncTokioStream> = match (self.security, &self.tls) {
            (Security::Tls, Some(tls)) => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(bottom);
                tokio::time::timeout(self.timeout, stream.upgrade_tls(tls.clone()))
                    .await
                    .map_err(|_| Failure::other(Stage::Session, "timed out in the TLS handshake"))?
                    .map_err(|e| session(&e))?;
                Box::new(TlsOverGate(stream))
            }
            _ => bottom,
        };
        let mut smtp = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await
        .map_err(|_| Failure::other(Stage::Session, "timed out waiting for the greeting"))?
        .map_err(|e| session(&e))?;
        if let (Security::StartTls, Some(tls)) = (self.security, &self.tls) {
            tokio::time::timeout(self.timeout, smtp.starttls(tls.clone(), &self.hello))
                .await
                .map_err(|_| Failure::other(Stage::Session, "timed out in STARTTLS"))?
                .map_err(|e| session(&e))?;
        }
        if let Some(credentials) = &self.credentials {
            tokio::time::timeout(
                self.timeout,
                smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await
            .map_err(|_| Failure::other(Stage::Session, "timed out in AUTH"))?
            .map_err(|e| session(&e))?;
        }
        Ok(Connection { smtp, gate })
    }
}

/// MAIL FROM, RCPT TO, DATA.
async fn start(
    connection: &mut Connection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), Failure> {
    let smtp = &mut connection.smtp;
    let session = |e: &lettre::transport::smtp::Error| Failure::from_lettre(Stage::Session, e);
    let mut options = Vec::new();
    let non_ascii = envelope
        .to()
        .iter()
        .chain(envelope.from())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !smtp.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Failure::other(
                Stage::Recipient,
                "the address is not ASCII and the server does not take SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    smtp.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(|e| session(&e))?;
    for to in envelope.to() {
        smtp.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(|e| Failure::from_lettre(Stage::Recipient, &e))?;
    }
    smtp.command(Data).await.map_err(|e| session(&e))?;
    Ok(())
}

/// The content, the commit, the final `.` and its reply. Returns the result and whether
/// the commit happened.
async fn finish<F>(
    connection: &mut Connection,
    message: &[u8],
    commit: F,
    timeout: Duration,
) -> (Result<(), Failure>, bool)
where
    F: FnOnce(Terminator) -> Release + Send + 'static,
{
    let gate = connection.gate.clone();
    let smtp = &mut connection.smtp;
    // lettre writes (and flushes) each part in turn, then the terminator; asking the
    // iterator for the part after the last is the moment to start holding.
    let parts = HoldAfter {
        part: Some(message),
        gate: &gate,
    };
    let send = smtp.message_iter(parts);
    tokio::pin!(send);
    let held = tokio::time::timeout(timeout, async {
        tokio::select! {
            reply = &mut send => Err(reply),
            () = gate.wait_held() => Ok(()),
        }
    })
    .await;
    match held {
        Err(_) => {
            return (
                Err(Failure::other(
                    Stage::Session,
                    "timed out sending the message",
                )),
                false,
            );
        }
        Ok(Err(reply)) => {
            // Finished before the terminator was held: it never was sent.
            let failure = match reply {
                Ok(_) => Failure::other(Stage::Session, "the server answered before the end"),
                Err(e) => Failure::from_lettre(Stage::Session, &e),
            };
            return (Err(failure), false);
        }
        Ok(Ok(())) => {}
    }
    let terminator = Terminator(gate.clone());
    let outcome = tokio::task::spawn_blocking(move || commit(terminator))
        .await
        .unwrap_or(Release::NotCommitted);
    match outcome {
        Release::NotCommitted => {
            gate.poison();
            (
                Err(Failure::other(
                    Stage::Session,
                    "the job could not be recorded as sent; the message was not finished",
                )),
                false,
            )
        }
        Release::Failed(e) => (
            Err(Failure::other(
                Stage::Session,
                format!("the connection failed before the end of the message: {e}"),
            )),
            true,
        ),
        Release::Written => {
            // RFC 5321 §4.5.3.2.6: wait up to ten minutes for the reply to the final `.`;
            // the job is already recorded, so its lease no longer matters.
            match tokio::time::timeout(Duration::from_secs(600), &mut send).await {
                Ok(Ok(_)) => (Ok(()), true),
                Ok(Err(e)) => (Err(Failure::from_lettre(Stage::Final, &e)), true),
                Err(_) => (
                    Err(Failure::other(
                        Stage::Final,
                        "no reply to the end of the message",
                    )),
                    true,
                ),
            }
        }
    }
}

/// Yields the message, then turns the gate to holding.
struct HoldAfter<'a> {
    part: Option<&'a [u8]>,
    gate: &'a Shared,
}

impl<'a> Iterator for HoldAfter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let part = self.part.take();
        if part.is_none() {
            self.gate.hold();
        }
        part
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes go to the socket.
    #[default]
    Pass,
    /// Bytes are kept back.
    Hold,
    /// Bytes are kept back and a flush asked for them: the caller may commit.
    Held,
    /// The commit failed: the held bytes are never sent.
    Poisoned,
}

#[derive(Debug, Default)]
struct GateState {
    mode: Mode,
    /// Held bytes, or bytes a release could not write at once (written by the next
    /// flush).
    pending: Vec<u8>,
    flush: Option<Waker>,
}

#[derive(Debug)]
struct Shared {
    tcp: TcpStream,
    state: Mutex<GateState>,
    held: Notify,
}

/// The held end of a message (its final `.`), handed to the commit: sent once the job is
/// recorded as sent, or withheld for good. Dropped unused, it is never sent either (the
/// connection is aborted).
pub struct Terminator(Arc<Shared>);

impl Terminator {
    /// Writes the terminator now, from the calling thread. Call straight after the
    /// commit: the time between the two is the window the module docs describe.
    pub fn send(self) -> Release {
        self.0.release()
    }

    /// Never sends it: the job could not be recorded as sent.
    pub fn withhold(self) -> Release {
        self.0.poison();
        Release::NotCommitted
    }
}

/// What became of a [`Terminator`].
#[derive(Debug)]
pub enum Release {
    /// Every held byte is in the socket buffer (or queued for the next flush).
    Written,
    /// The socket failed: the terminator never left.
    Failed(io::Error),
    /// The commit did not happen.
    NotCommitted,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hold(&self) {
        let mut state = self.state();
        if state.mode == Mode::Pass {
            state.mode = Mode::Hold;
        }
    }

    async fn wait_held(&self) {
        loop {
            let notified = self.held.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state().mode == Mode::Held {
                return;
            }
            notified.await;
        }
    }

    /// Writes the held bytes now, from the calling thread, and lets traffic pass again.
    fn release(&self) -> Release {
        let mut state = self.state();
        let held = std::mem::take(&mut state.pending);
        let mut written = 0;
        let mut result = Release::Written;
        while written < held.len() {
            match self.tcp.try_write(&held[written..]) {
                Ok(n) => written += n,
                // The socket buffer is full: the next flush writes the rest.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    result = Release::Failed(e);
                    break;
                }
            }
        }
        if matches!(result, Release::Failed(_)) {
            state.mode = Mode::Poisoned;
        } else {
            state.pending = held[written..].to_vec();
            state.mode = Mode::Pass;
        }
        if let Some(waker) = state.flush.take() {
            waker.wake();
        }
        result
    }

    fn poison(&self) {
        let mut state = self.state();
        state.mode = Mode::Poisoned;
        state.pending.clear();
        if let Some(waker) = state.flush.take() {
            waker.wake();
        }
    }

    /// Writes bytes a release left over. Ready once none are left.
    fn poll_drain(&self, state: &mut GateState, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !state.pending.is_empty() {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write(&state.pending) {
                Ok(n) => {
                    state.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "message abandoned")
}

/// The TCP stream under everything else, holding back what it is told to.
#[derive(Debug)]
struct Gate(Arc<Shared>);

impl AsyncRead for Gate {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.tcp.poll_read_ready(cx))?;
            match self.0.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Gate {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let shared = &self.0;
        let mut state = shared.state();
        match state.mode {
            Mode::Hold | Mode::Held => {
                state.pending.extend_from_slice(data);
                return Poll::Ready(Ok(data.len()));
            }
            Mode::Poisoned => return Poll::Ready(Err(broken())),
            Mode::Pass => {}
        }
        ready!(shared.poll_drain(&mut state, cx))?;
        drop(state);
        loop {
            ready!(shared.tcp.poll_write_ready(cx))?;
            match shared.tcp.try_write(data) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shared = &self.0;
        let mut state = shared.state();
        match state.mode {
            Mode::Hold | Mode::Held if !state.pending.is_empty() => {
                state.mode = Mode::Held;
                state.flush = Some(cx.waker().clone());
                drop(state);
                shared.held.notify_waiters();
                Poll::Pending
            }
            Mode::Hold | Mode::Held => Poll::Ready(Ok(())),
            Mode::Poisoned => Poll::Ready(Err(broken())),
            Mode::Pass => shared.poll_drain(&mut state, cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the connection is dropped.
        Poll::Ready(Ok(()))
    }
}

impl AsyncTokioStream for Gate {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.tcp.peer_addr()
    }
}

/// lettre's TLS stream over the gate, seen as a plain stream by the SMTP connection on
/// top (implicit TLS must be up before the greeting, which lettre's connection reads
/// first).
#[allow(deprecated)]
#[derive(Debug)]
struct TlsOverGate(AsyncNetworkStream);

impl AsyncRead for TlsOverGate {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(futures_io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsOverGate {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsOverGate {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}
