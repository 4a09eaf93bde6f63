//! Shared WebSocket plumbing for the hub's fronts (Pusher now, Phoenix later).
//!
//! Owns: the opening handshake check ([`handshake`]), the tungstenite
//! configuration tuned for memory, the bounded
//! per-socket outbound queue ([`queue`]), the single writer task per socket
//! ([`writer`]), the write coalescing under it ([`coalesce`]) and the
//! reader-side helpers ([`reader`]). Receives: an
//! upgraded byte stream (any `AsyncRead + AsyncWrite + Unpin + Send`, e.g.
//! `TokioIo<hyper::upgrade::Upgraded>`). Hands on: inbound messages to the
//! front's session loop, and frames from the hub/session to the peer.

pub mod coalesce;
pub mod handshake;
pub mod queue;
pub mod reader;
pub mod writer;

pub use coalesce::Coalesce;
pub use handshake::{UpgradeError, accept_key, mark_refusal, upgrade_accept};
pub use queue::{CloseSpec, Frame, OutboundRx, OutboundTx, QueueLimits, SendError, outbound};
pub use reader::{Inbound, ReadError, next_inbound};
pub use writer::{WriterExit, run_writer};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Read buffer per socket. tungstenite's default is 128 KiB; a small buffer
/// is what keeps an idle connection at a few KiB (see performance notes).
pub const READ_BUFFER: usize = 2 * 1024;

/// Memory-tuned tungstenite configuration for a server socket.
///
/// `max_message_size` caps one inbound message (and frame). tungstenite hands
/// each outbound frame straight on (`write_buffer_size` 0, so its own buffer
/// never holds more than one frame) to the [`Coalesce`] layer of
/// [`server_socket`], which gathers a batch until the writer flushes and then
/// frees its buffer; the ceiling on what tungstenite may buffer when the peer
/// is slow is small, because our own queue does the buffering.
pub fn config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// Wraps an already-upgraded stream (the HTTP handshake is done by the edge)
/// as a server-side WebSocket whose writes are gathered until each flush.
pub async fn server_socket<S>(io: S, max_message_size: usize) -> WebSocketStream<Coalesce<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(
        Coalesce::new(io),
        Role::Server,
        Some(config(max_message_size)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_small() {
        let c = config(10_000);
        assert_eq!(c.read_buffer_size, READ_BUFFER);
        assert_eq!(
            c.write_buffer_size, 0,
            "frames are gathered by Coalesce, not tungstenite"
        );
        assert_eq!(c.max_message_size, Some(10_000));
    }
}
