//! The postgres_changes splice: one upstream Supabase Realtime socket per
//! client socket, opened lazily on the first join that asks for
//! postgres_changes.
//!
//! Owns: the upstream WebSocket (same vsn and API key as the client), its
//! heartbeat (every 25 s; an unanswered one ends the link), and the set of
//! topics joined through it. Receives: the client's frames on spliced
//! topics, verbatim, from the session. Hands on: upstream frames on those
//! topics to the client's outbound queue verbatim (refs are per socket, so
//! nothing needs rewriting; upstream heartbeat replies are kept back), and,
//! when the link fails, `phx_error` on every spliced topic (so realtime-js
//! rejoins) plus a [`Lost`] notice to the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::codec::{Outgoing, Vsn, decode_text, encode_text};
use super::wire::{self, ChannelEnd, JoinRefusal, ReplyStatus};
use crate::config::supabase::Upstream;
use crate::ws::{Frame, OutboundTx};

/// Deadline to connect (TCP, TLS and the WebSocket handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat interval towards the upstream (realtime-js uses 25 s).
const HEARTBEAT: Duration = Duration::from_secs(25);
/// Frames waiting to go upstream.
const QUEUE: usize = 256;

/// A client frame on a spliced topic.
#[derive(Debug)]
pub(crate) struct Relay {
    /// `realtime:<name>`.
    pub(crate) topic: Arc<str>,
    /// The event (`phx_join` frames are remembered for error replies).
    pub(crate) event: String,
    pub(crate) join_ref: Option<String>,
    pub(crate) r#ref: Option<String>,
    /// The frame exactly as the client sent it.
    pub(crate) frame: Frame,
}

/// The link failed; the session forgets its spliced topics.
#[derive(Debug)]
pub(crate) struct Lost {
    /// What failed, for the log.
    pub(crate) detail: String,
}

/// The session's handle on the upstream task.
pub(crate) struct Link {
    tx: mpsc::Sender<Relay>,
    pub(crate) lost: mpsc::Receiver<Lost>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Link {
    /// Queues a client frame for the upstream; false if the link is gone
    /// or backed up.
    pub(crate) fn send(&self, r: Relay) -> bool {
        self.tx.try_send(r).is_ok()
    }
}

/// Starts the link task.
pub(crate) fn spawn(up: &Upstream, vsn: Vsn, token: &str, client: OutboundTx) -> Link {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (lost_tx, lost) = mpsc::channel(1);
    let up = up.clone();
    let token = token.to_string();
    let task = tokio::spawn(async move {
        let detail = run(&up, vsn, &token, rx, &client).await;
        tracing::info!(upstream = %up.url, detail = %detail, "supabase postgres_changes upstream closed");
        let _ = lost_tx.send(Lost { detail }).await;
    });
    Link { tx, lost, task }
}

fn send_client(client: &OutboundTx, vsn: Vsn, m: &Outgoing<'_>) {
    let _ = client.try_send(Frame::from(encode_text(vsn, m)));
}

/// Runs until the link fails; returns why.
async fn run(
    up: &Upstream,
    vsn: Vsn,
    token: &str,
    mut rx: mpsc::Receiver<Relay>,
    client: &OutboundTx,
) -> String {
    // topic → join ref of the channels joined through this link.
    let mut joined: HashMap<Arc<str>, Option<String>> = HashMap::new();
    let ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect(up, vsn, token)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return refuse_pending(&mut rx, client, vsn, e),
        Err(_) => return refuse_pending(&mut rx, client, vsn, "connect timed out".into()),
    };
    let (mut sink, mut stream) = ws.split();
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    let mut pending_hb: Option<String> = None;
    let mut hb_n = 0u64;
    let detail = loop {
        tokio::select! {
            r = rx.recv() => {
                let Some(r) = r else { return "client gone".into() };
                if r.event == "phx_join" {
                    joined.insert(r.topic.clone(), r.join_ref.clone().or(r.r#ref.clone()));
                } else if r.event == "phx_leave" {
                    joined.remove(&r.topic);
                }
                let msg = match r.frame {
                    Frame::Text(t) => Message::Text(t),
                    Frame::Binary(b) => Message::Binary(b),
                };
                if let Err(e) = sink.send(msg).await {
                    break format!("send failed: {e}");
                }
            }
            _ = tick.tick() => {
                if pending_hb.is_some() {
                    break "heartbeat timeout".to_string();
                }
                hb_n += 1;
                let r = format!("portico-hb-{hb_n}");
                let payload = wire::empty_object();
                let text = encode_hb(vsn, &r, &payload);
                pending_hb = Some(r);
                if let Err(e) = sink.send(Message::Text(Utf8Bytes::from(text))).await {
                    break format!("heartbeat send failed: {e}");
                }
            }
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    match decode_text(vsn, &t) {
                        Ok(p) if p.topic == "phoenix" => {
                            if p.r#ref.is_some() && p.r#ref == pending_hb {
                                pending_hb = None;
                            }
                        }
                        Ok(p) => {
                            if p.event == "phx_close" {
                                joined.remove(p.topic.as_str());
                            }
                            let _ = client.try_send(Frame::Text(t));
                        }
                        Err(_) => {}
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    let _ = client.try_send(Frame::Binary(b));
                }
                Some(Ok(Message::Close(f))) => break format!("closed by upstream ({:?})", f.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("read failed: {e}"),
                None => break "upstream ended".to_string(),
            }
        }
    };
    // Recoverable: phx_error makes realtime-js rejoin, which opens a new link.
    let payload = RawValue::from_string(ChannelEnd::UpstreamLost.payload().to_string())
        .unwrap_or_else(|_| wire::empty_object());
    for (topic, jr) in &joined {
        send_client(
            client,
            vsn,
            &Outgoing {
                join_ref: jr.as_deref(),
                r#ref: jr.as_deref(),
                topic,
                event: ChannelEnd::UpstreamLost.event(),
                payload: &payload,
            },
        );
    }
    detail
}

fn encode_hb(vsn: Vsn, r: &str, payload: &RawValue) -> String {
    encode_text(
        vsn,
        &Outgoing {
            join_ref: None,
            r#ref: Some(r),
            topic: "phoenix",
            event: "heartbeat",
            payload,
        },
    )
}

/// The link never came up: every join waiting for it gets an error reply.
fn refuse_pending(
    rx: &mut mpsc::Receiver<Relay>,
    client: &OutboundTx,
    vsn: Vsn,
    detail: String,
) -> String {
    let reason = JoinRefusal::UpstreamUnavailable {
        detail: detail.clone(),
    }
    .reason();
    let payload = wire::reply_payload(ReplyStatus::Error, &wire::reason_response(&reason));
    while let Ok(r) = rx.try_recv() {
        if r.event == "phx_join" {
            send_client(
                client,
                vsn,
                &Outgoing {
                    join_ref: r.join_ref.as_deref(),
                    r#ref: r.r#ref.as_deref(),
                    topic: &r.topic,
                    event: "phx_reply",
                    payload: &payload,
                },
            );
        }
    }
    detail
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type UpstreamWs = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// The upstream URL for one client socket.
fn socket_url(up: &Upstream, vsn: Vsn, token: &str) -> String {
    let base = up.url.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_string());
    let key: String = token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("{base}/websocket?apikey={key}&vsn={}", vsn.as_str())
}

async fn connect(up: &Upstream, vsn: Vsn, token: &str) -> Result<UpstreamWs, String> {
    let url = socket_url(up, vsn, token);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(h) = &up.host
        && let Ok(v) = HeaderValue::from_str(h)
    {
        req.headers_mut().insert(http::header::HOST, v);
    }
    let host = up
        .uri
        .host()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let tls = matches!(up.uri.scheme_str(), Some("wss" | "https"));
    let port = up.uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if tls {
        let name =
            rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(client_tls()?);
        Box::new(
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?,
        )
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(req, io)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

fn client_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(url: &str) -> Upstream {
        Upstream {
            url: Arc::from(url),
            uri: url.parse().unwrap(),
            host: None,
        }
    }

    #[test]
    fn socket_urls() {
        assert_eq!(
            socket_url(&up("https://ref.supabase.co/realtime/v1"), Vsn::V2, "a.b+c"),
            "wss://ref.supabase.co/realtime/v1/websocket?apikey=a.b%2Bc&vsn=2.0.0"
        );
        assert_eq!(
            socket_url(&up("ws://realtime:4000/socket/"), Vsn::V1, "sb_x"),
            "ws://realtime:4000/socket/websocket?apikey=sb_x&vsn=1.0.0"
        );
    }
}
