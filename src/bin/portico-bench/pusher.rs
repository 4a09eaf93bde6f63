//! The Pusher protocol as a client speaks it: connection_established,
//! subscribe (public, private and presence with HMAC auth), pong replies,
//! and signed REST publishes.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use md5::Digest;
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{HttpConn, Target, Ws};

fn hmac_hex(secret: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Microseconds since the Unix epoch (the clock shared by every process).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Waits for `pusher:connection_established`; returns the socket id.
pub(crate) async fn established(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws
            .next()
            .await
            .context("closed before connection_established")??
        {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                match v["event"].as_str() {
                    Some("pusher:connection_established") => {
                        let data: serde_json::Value =
                            serde_json::from_str(v["data"].as_str().unwrap_or("{}"))?;
                        return Ok(data["socket_id"]
                            .as_str()
                            .context("no socket_id")?
                            .to_owned());
                    }
                    Some("pusher:error") => bail!("pusher:error {}", v["data"]),
                    _ => {}
                }
            }
            Message::Close(f) => bail!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// The subscribe frame for `channel`; private-/presence- channels get an
/// auth signature (presence with `user_id`).
pub(crate) fn subscribe_frame(
    t: &Target,
    socket_id: &str,
    channel: &str,
    user_id: Option<&str>,
) -> String {
    if let Some(uid) = user_id {
        let channel_data =
            serde_json::json!({"user_id": uid, "user_info": {"name": uid}}).to_string();
        let sig = hmac_hex(
            &t.app_secret,
            &format!("{socket_id}:{channel}:{channel_data}"),
        );
        serde_json::json!({"event": "pusher:subscribe", "data": {
            "channel": channel, "auth": format!("{}:{sig}", t.app_key), "channel_data": channel_data}})
        .to_string()
    } else if channel.starts_with("private-") {
        let sig = hmac_hex(&t.app_secret, &format!("{socket_id}:{channel}"));
        serde_json::json!({"event": "pusher:subscribe", "data": {
            "channel": channel, "auth": format!("{}:{sig}", t.app_key)}})
        .to_string()
    } else {
        format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}"}}}}"#)
    }
}

/// Subscribes and waits for `pusher_internal:subscription_succeeded`.
pub(crate) async fn subscribe(
    ws: &mut Ws,
    t: &Target,
    socket_id: &str,
    channel: &str,
    user_id: Option<&str>,
) -> anyhow::Result<()> {
    ws.send(Message::text(subscribe_frame(
        t, socket_id, channel, user_id,
    )))
    .await?;
    loop {
        match ws
            .next()
            .await
            .context("closed before subscription_succeeded")??
        {
            Message::Text(t) => {
                if t.contains("subscription_succeeded") {
                    return Ok(());
                }
                if t.contains("pusher:error") || t.contains("subscription_error") {
                    bail!("subscribe refused: {t}");
                }
                if t.contains("pusher:ping") {
                    ws.send(Message::text(PONG)).await?;
                }
            }
            Message::Close(f) => bail!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// The reply to a server's `pusher:ping`.
pub(crate) const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

/// The signed query string for a REST call.
pub(crate) fn signed_path(t: &Target, method: &str, path: &str, body: &[u8]) -> String {
    let ts = now_us() / 1_000_000;
    let md5 = hex::encode(md5::Md5::digest(body));
    let q = format!(
        "auth_key={}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}",
        t.app_key
    );
    let sig = hmac_hex(&t.app_secret, &format!("{method}\n{path}\n{q}"));
    format!("{path}?{q}&auth_signature={sig}")
}

/// The bench payload: `b:<seq>:<send time µs>` (no JSON escapes, so any
/// server passes it through unchanged).
pub(crate) fn payload(seq: u64, t_us: u64) -> String {
    format!("b:{seq}:{t_us}")
}

/// Finds the bench payload in a delivered frame: (seq, send time µs).
pub(crate) fn parse_payload(frame: &str) -> Option<(u64, u64)> {
    let at = frame.find("b:")?;
    let mut it = frame[at + 2..].splitn(3, |c: char| !c.is_ascii_digit());
    let seq = it.next()?.parse().ok()?;
    let t = it.next()?.parse().ok()?;
    Some((seq, t))
}

/// Publishes one event to `channels` through `POST /apps/{id}/events`.
pub(crate) async fn publish(
    http: &mut HttpConn,
    t: &Target,
    channels: &[&str],
    event: &str,
    data: &str,
) -> anyhow::Result<()> {
    let body = serde_json::json!({"name": event, "channels": channels, "data": data}).to_string();
    let path = format!("/apps/{}/events", t.app_id);
    let pq = signed_path(t, "POST", &path, body.as_bytes());
    let (status, resp) = http.request("POST", &pq, body.as_bytes()).await?;
    if status != 200 {
        bail!(
            "publish answered {status}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let f = r#"{"event":"bench","channel":"c","data":"b:42:1700000000123456"}"#;
        assert_eq!(parse_payload(f), Some((42, 1_700_000_000_123_456)));
        assert_eq!(parse_payload(&payload(1, 2)), Some((1, 2)));
    }
}
