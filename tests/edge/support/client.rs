//! Clients: HTTP/1.1 and HTTP/2 over TLS (trusting only the test's dev CA)
//! or plain TCP, a WebSocket client, and raw sockets for the tests that
//! must misbehave (slowloris, caps).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portico::http::body::{Body, empty};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::within;

/// A collected response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Collects a response body (bounded in time).
pub(crate) async fn collect(resp: Response<Incoming>) -> Resp {
    let (parts, body) = resp.into_parts();
    let body = within("response body", body.collect())
        .await
        .expect("response body")
        .to_bytes();
    Resp {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

/// A rustls client config that trusts only `ca` and offers `alpn`.
pub(crate) fn tls_config(ca: &Path, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(c.expect("CA pem")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

pub(crate) async fn tcp(addr: SocketAddr) -> TcpStream {
    within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("TCP connect")
}

/// TLS to `addr` with SNI `localhost`, trusting `ca`.
pub(crate) async fn tls(addr: SocketAddr, ca: &Path, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let tcp = tcp(addr).await;
    let name = ServerName::try_from("localhost").expect("name");
    within(
        "TLS handshake",
        TlsConnector::from(tls_config(ca, alpn)).connect(name, tcp),
    )
    .await
    .expect("TLS handshake with the dev CA trusted")
}

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// One client connection, HTTP/1.1 or HTTP/2.
pub(crate) struct Client {
    sender: Sender,
    scheme: &'static str,
    authority: String,
}

impl Client {
    /// HTTP/1.1 over plain TCP.
    pub(crate) async fn plain(addr: SocketAddr) -> Client {
        Self::h1_over(tcp(addr).await, addr).await
    }

    /// HTTP/1.1 over plain TCP from `source` (any address in 127/8).
    pub(crate) async fn plain_from(source: &str, addr: SocketAddr) -> Client {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{source}:0").parse().expect("source"))
            .expect("bind source");
        let stream = within("TCP connect", sock.connect(addr))
            .await
            .expect("connect");
        Self::h1_over(stream, addr).await
    }

    async fn h1_over(stream: TcpStream, addr: SocketAddr) -> Client {
        let io = TokioIo::new(stream);
        let (send, conn) = within("h1 handshake", http1::handshake(io))
            .await
            .expect("h1 handshake");
        tokio::spawn(conn.with_upgrades());
        Client {
            sender: Sender::H1(send),
            scheme: "http",
            authority: format!("localhost:{}", addr.port()),
        }
    }

    /// HTTPS offering `alpn`; speaks whatever was negotiated.
    pub(crate) async fn tls(addr: SocketAddr, ca: &Path, alpn: &[&[u8]]) -> Client {
        let stream = tls(addr, ca, alpn).await;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        let sender = if h2 {
            let (send, conn) = within("h2 handshake", http2::handshake(TokioExecutor::new(), io))
                .await
                .expect("h2 handshake");
            tokio::spawn(conn);
            Sender::H2(send)
        } else {
            let (send, conn) = within("h1 handshake", http1::handshake(io))
                .await
                .expect("h1 handshake");
            tokio::spawn(conn.with_upgrades());
            Sender::H1(send)
        };
        Client {
            sender,
            scheme: "https",
            authority: format!("localhost:{}", addr.port()),
        }
    }

    /// A request builder for `path` with the right URI form and `Host`.
    pub(crate) fn req(&self, method: Method, path: &str) -> http::request::Builder {
        match self.sender {
            Sender::H1(_) => Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, &self.authority),
            Sender::H2(_) => Request::builder()
                .method(method)
                .version(Version::HTTP_2)
                .uri(format!("{}://{}{path}", self.scheme, self.authority)),
        }
    }

    /// An HTTP/1.1 request builder with an explicit `Host`.
    pub(crate) fn raw_req(method: Method, path: &str, host: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, host)
    }

    /// Sends `req`, returning once the response head is in.
    pub(crate) async fn send(&mut self, req: Request<Body>) -> Response<Incoming> {
        let fut = async {
            match &mut self.sender {
                Sender::H1(s) => {
                    s.ready().await?;
                    s.send_request(req).await
                }
                Sender::H2(s) => {
                    s.ready().await?;
                    s.send_request(req).await
                }
            }
        };
        within("response head", fut).await.expect("request sent")
    }

    /// Sends `req` and collects the response.
    pub(crate) async fn fetch(&mut self, req: Request<Body>) -> Resp {
        let r = self.send(req).await;
        collect(r).await
    }

    /// `GET path`, returning as soon as the head is in.
    pub(crate) async fn get_streaming(&mut self, path: &str) -> Response<Incoming> {
        let req = self.req(Method::GET, path).body(empty()).expect("request");
        self.send(req).await
    }

    /// `GET path` with no extra headers.
    pub(crate) async fn get(&mut self, path: &str) -> Resp {
        let req = self.req(Method::GET, path).body(empty()).expect("request");
        self.fetch(req).await
    }
}

/// WebSocket config with room for the large-message tests.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20))
}

/// A WebSocket client over any stream (plain TCP or TLS).
pub(crate) type Ws<S> = WebSocketStream<S>;

/// Opens a WebSocket to `url` over `stream` (already connected), with
/// extra request headers.
pub(crate) async fn ws_over<S>(
    stream: S,
    url: &str,
    headers: &[(&str, &str)],
) -> (Ws<S>, http::Response<Option<Vec<u8>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut req = url.into_client_request().expect("ws url");
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v).expect("value"),
        );
    }
    let (ws, resp) = within(
        "websocket handshake",
        tokio_tungstenite::client_async_with_config(req, stream, Some(ws_config())),
    )
    .await
    .unwrap_or_else(|e| panic!("websocket handshake to {url}: {e}"));
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    (ws, resp)
}

/// A WebSocket through a plain listener.
pub(crate) async fn ws_plain(addr: SocketAddr, path: &str) -> Ws<TcpStream> {
    let url = format!("ws://localhost:{}{path}", addr.port());
    ws_over(tcp(addr).await, &url, &[]).await.0
}
