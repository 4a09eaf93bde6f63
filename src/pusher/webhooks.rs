//! Pusher webhooks: bounded, batched, signed, retried.
//!
//! Owns: the webhook queue and the delivery task. Receives: [`WebhookEvent`]s
//! from sessions and the REST API through [`Webhooks::emit`], which never
//! blocks (a full queue drops the event and counts it). Hands on: one POST per
//! app and target with `{"time_ms","events":[...]}`, headers `X-Pusher-Key`
//! and `X-Pusher-Signature` (HMAC-SHA256 of the body), batching what arrives
//! within [`BATCH_WINDOW`]; any failure or non-2xx is retried with
//! exponential backoff for up to [`RETRY_FOR`] (Pusher's 5 minutes).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::app::{App, WebhookKind, WebhookTarget};
use super::auth::webhook_signature;

/// Events waiting for delivery, at most.
pub const QUEUE: usize = 10_000;
/// Events arriving within this window go out in one request.
pub const BATCH_WINDOW: Duration = Duration::from_millis(250);
/// Most events per request.
pub const BATCH_MAX: usize = 100;
/// Retry a failed delivery for this long.
pub const RETRY_FOR: Duration = Duration::from_secs(300);
/// Requests in flight at once.
pub const CONCURRENCY: usize = 16;
/// Deadline of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One webhook event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// Event kind (serialised as `name`).
    #[serde(rename = "name", serialize_with = "ser_kind")]
    pub kind: WebhookKind,
    /// The channel.
    #[serde(serialize_with = "ser_arc")]
    pub channel: Arc<str>,
    /// `member_*` and presence `client_event`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_arc"
    )]
    pub user_id: Option<Arc<str>>,
    /// `client_event`: the event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `client_event`: the data as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `client_event`: the sender.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_arc"
    )]
    pub socket_id: Option<Arc<str>>,
    /// `subscription_count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_count: Option<usize>,
}

fn ser_arc<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn ser_opt_arc<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v),
        None => s.serialize_none(),
    }
}

fn ser_kind<S: serde::Serializer>(k: &WebhookKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

impl WebhookEvent {
    /// An event with only a kind and a channel.
    pub fn new(kind: WebhookKind, channel: &Arc<str>) -> WebhookEvent {
        WebhookEvent {
            kind,
            channel: channel.clone(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
            subscription_count: None,
        }
    }
}

/// A failed POST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The endpoint answered with a non-2xx status.
    #[error("webhook endpoint answered {0}")]
    Status(u16),
    /// Connecting or sending failed.
    #[error("webhook request failed")]
    Transport,
    /// No answer in time.
    #[error("webhook request timed out")]
    Timeout,
}

/// Future of one POST.
pub type PostFuture = Pin<Box<dyn Future<Output = Result<(), PostError>> + Send>>;

/// Sends one signed webhook body; the HTTP client behind it is swappable for
/// tests.
pub trait Poster: Send + Sync + 'static {
    /// POSTs `body` to `url` with the given headers.
    fn post(
        &self,
        url: &http::Uri,
        headers: [(&'static str, String); 3],
        body: Bytes,
    ) -> PostFuture;
}

/// Handle to the webhook queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct Webhooks {
    tx: mpsc::Sender<(Arc<App>, WebhookEvent)>,
    dropped: Arc<AtomicU64>,
}

impl Webhooks {
    /// Starts the batching/delivery task; it stops when `cancel` fires.
    pub fn spawn(poster: Arc<dyn Poster>, cancel: CancellationToken) -> Webhooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, poster, cancel));
        Webhooks {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A handle that discards everything (no task).
    pub fn disabled() -> Webhooks {
        let (tx, _rx) = mpsc::channel(1);
        Webhooks {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `ev` for every target of `app` that wants it; never waits.
    pub fn emit(&self, app: &Arc<App>, ev: WebhookEvent) {
        if !app.webhooks.iter().any(|t| t.wants(ev.kind)) {
            return;
        }
        if self.tx.try_send((app.clone(), ev)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            crate::metrics::webhook("dropped");
            tracing::warn!(app = %app.id, "webhook queue full, event dropped");
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

type BatchKey = (Arc<str>, http::Uri);

struct Batch {
    app: Arc<App>,
    target: WebhookTarget,
    events: Vec<WebhookEvent>,
}

async fn run(
    mut rx: mpsc::Receiver<(Arc<App>, WebhookEvent)>,
    poster: Arc<dyn Poster>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut batches: HashMap<BatchKey, Batch> = HashMap::new();
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = rx.recv() => match ev { Some(ev) => ev, None => return },
        };
        add(&mut batches, first);
        let deadline = tokio::time::sleep(BATCH_WINDOW);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                ev = rx.recv() => match ev {
                    Some(ev) => add(&mut batches, ev),
                    None => break,
                },
            }
            if batches.values().any(|b| b.events.len() >= BATCH_MAX) {
                break;
            }
        }
        for (_, batch) in batches.drain() {
            for chunk in batch.events.chunks(BATCH_MAX) {
                let body = encode_body(chunk);
                let permit = permits.clone();
                let poster = poster.clone();
                let app = batch.app.clone();
                let url = batch.target.url.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    let Ok(_p) = permit.acquire_owned().await else {
                        return;
                    };
                    deliver(&*poster, &app, &url, body, &cancel).await;
                });
            }
        }
    }
}

fn add(batches: &mut HashMap<BatchKey, Batch>, (app, ev): (Arc<App>, WebhookEvent)) {
    for target in app.webhooks.iter().filter(|t| t.wants(ev.kind)) {
        batches
            .entry((app.id.clone(), target.url.clone()))
            .or_insert_with(|| Batch {
                app: app.clone(),
                target: target.clone(),
                events: Vec::new(),
            })
            .events
            .push(ev.clone());
    }
}

/// The request body for `events`.
pub fn encode_body(events: &[WebhookEvent]) -> Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        time_ms: u128,
        events: &'a [WebhookEvent],
    }
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Bytes::from(serde_json::to_vec(&Body { time_ms, events }).unwrap_or_default())
}

/// The backoff before retry number `attempt` (1-based): 1 s doubling to 60 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

async fn deliver(
    poster: &dyn Poster,
    app: &App,
    url: &http::Uri,
    body: Bytes,
    cancel: &CancellationToken,
) {
    let started = tokio::time::Instant::now();
    let sig = webhook_signature(&app.secret, &body);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("x-pusher-key", app.key.to_string()),
            ("x-pusher-signature", sig.clone()),
        ];
        let res =
            match tokio::time::timeout(REQUEST_TIMEOUT, poster.post(url, headers, body.clone()))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(PostError::Timeout),
            };
        let Err(e) = res else {
            crate::metrics::webhook("delivered");
            return;
        };
        let wait = backoff(attempt);
        if started.elapsed() + wait > RETRY_FOR {
            crate::metrics::webhook("failed");
            tracing::warn!(app = %app.id, %url, error = %e, attempts = attempt, "webhook given up");
            return;
        }
        crate::metrics::webhook("retried");
        tracing::debug!(app = %app.id, %url, error = %e, attempt, "webhook failed, retrying");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The production [`Poster`]: hyper-util's pooled client over rustls.
pub struct HttpPoster {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<Bytes>,
    >,
}

impl HttpPoster {
    /// A client trusting the platform's root certificates.
    pub fn new() -> std::io::Result<HttpPoster> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(HttpPoster { client })
    }
}

impl Poster for HttpPoster {
    fn post(
        &self,
        url: &http::Uri,
        headers: [(&'static str, String); 3],
        body: Bytes,
    ) -> PostFuture {
        let mut req = http::Request::post(url.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(http_body_util::Full::new(body));
        let client = self.client.clone();
        Box::pin(async move {
            let req = req.map_err(|_| PostError::Transport)?;
            let resp = client
                .request(req)
                .await
                .map_err(|_| PostError::Transport)?;
            let status = resp.status();
            // Drain so the connection can be reused.
            let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
            if status.is_success() {
                Ok(())
            } else {
                Err(PostError::Status(status.as_u16()))
            }
        })
    }
}

#[cfg(test)]
mod tests;
