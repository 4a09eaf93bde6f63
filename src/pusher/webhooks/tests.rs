//! Webhook batching, signing and retry tests with a recording poster.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use super::*;

type Call = (String, Vec<(&'static str, String)>, Bytes);

#[derive(Default)]
struct Rec {
    calls: Mutex<Vec<Call>>,
    fail_first: Mutex<u32>,
}

impl Poster for Rec {
    fn post(
        &self,
        url: &http::Uri,
        headers: [(&'static str, String); 3],
        body: Bytes,
    ) -> PostFuture {
        self.calls
            .lock()
            .push((url.to_string(), headers.to_vec(), body));
        let mut f = self.fail_first.lock();
        let res = if *f > 0 {
            *f -= 1;
            Err(PostError::Status(500))
        } else {
            Ok(())
        };
        Box::pin(async move { res })
    }
}

fn app() -> Arc<App> {
    let mut a = App::new("1", "key", "secret");
    a.webhooks = vec![WebhookTarget {
        url: http::Uri::from_static("http://hooks.test/pusher"),
        events: vec![WebhookKind::ChannelOccupied, WebhookKind::MemberAdded],
    }];
    Arc::new(a)
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn batches_signs_and_filters() {
    let rec = Arc::new(Rec::default());
    let hooks = Webhooks::spawn(rec.clone(), CancellationToken::new());
    let app = app();
    let ch: Arc<str> = Arc::from("presence-a");
    hooks.emit(&app, WebhookEvent::new(WebhookKind::ChannelOccupied, &ch));
    hooks.emit(&app, WebhookEvent::new(WebhookKind::ChannelVacated, &ch));
    let mut m = WebhookEvent::new(WebhookKind::MemberAdded, &ch);
    m.user_id = Some(Arc::from("7"));
    hooks.emit(&app, m);
    settle().await;
    tokio::time::advance(BATCH_WINDOW + Duration::from_millis(1)).await;
    settle().await;
    let calls = rec.calls.lock();
    assert_eq!(calls.len(), 1, "one batched request");
    let (url, headers, body) = &calls[0];
    assert_eq!(url, "http://hooks.test/pusher");
    assert!(headers.contains(&("x-pusher-key", "key".into())));
    assert!(headers.contains(&("x-pusher-signature", webhook_signature("secret", body))));
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    assert!(v["time_ms"].is_u64());
    assert_eq!(
        v["events"],
        serde_json::json!([
            {"name":"channel_occupied","channel":"presence-a"},
            {"name":"member_added","channel":"presence-a","user_id":"7"}
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_until_success() {
    let rec = Arc::new(Rec::default());
    *rec.fail_first.lock() = 2;
    let hooks = Webhooks::spawn(rec.clone(), CancellationToken::new());
    let ch: Arc<str> = Arc::from("c");
    hooks.emit(&app(), WebhookEvent::new(WebhookKind::ChannelOccupied, &ch));
    settle().await;
    tokio::time::advance(BATCH_WINDOW).await;
    settle().await;
    assert_eq!(rec.calls.lock().len(), 1);
    tokio::time::advance(backoff(1)).await;
    settle().await;
    assert_eq!(rec.calls.lock().len(), 2);
    tokio::time::advance(backoff(2)).await;
    settle().await;
    assert_eq!(rec.calls.lock().len(), 3);
    tokio::time::advance(Duration::from_secs(600)).await;
    settle().await;
    assert_eq!(rec.calls.lock().len(), 3, "stops after success");
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_five_minutes() {
    let rec = Arc::new(Rec::default());
    *rec.fail_first.lock() = u32::MAX;
    let hooks = Webhooks::spawn(rec.clone(), CancellationToken::new());
    let ch: Arc<str> = Arc::from("c");
    hooks.emit(&app(), WebhookEvent::new(WebhookKind::ChannelOccupied, &ch));
    for _ in 0..100 {
        settle().await;
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    let n = rec.calls.lock().len();
    // 1+2+4+8+16+32 s then every 60 s within 300 s: about 9 attempts.
    assert!((5..=12).contains(&n), "{n} attempts");
}

#[test]
fn backoff_grows_and_caps() {
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(2), Duration::from_secs(2));
    assert_eq!(backoff(7), Duration::from_secs(60));
    assert_eq!(backoff(100), Duration::from_secs(60));
}

#[test]
fn unwanted_events_are_not_queued() {
    let hooks = Webhooks::disabled();
    let a = Arc::new(App::new("1", "k", "s"));
    hooks.emit(
        &a,
        WebhookEvent::new(WebhookKind::ChannelOccupied, &Arc::from("c")),
    );
    assert_eq!(hooks.dropped(), 0);
}
