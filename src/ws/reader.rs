//! Reader-side helpers: turn the socket's stream half into what a session
//! cares about.
//!
//! Owns: nothing but the mapping. Receives: tungstenite messages and errors
//! from the stream half. Hands on: [`Inbound`] items (text, binary, liveness,
//! close) or a typed [`ReadError`] the front maps to its close code.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// One inbound item a session acts on.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping or pong control frame: the peer is alive (tungstenite answers
    /// pings itself).
    Alive,
    /// The peer sent a close frame (with its code, if any) or ended the stream.
    /// A close code that is invalid on the wire (RFC 6455 §7.4: 1005, 999,
    /// a reserved one) arrives as 1002, and tungstenite has queued its
    /// answer, a close 1002: the writer's close flushes it (see
    /// [`run_writer`](super::run_writer)).
    Closed(Option<u16>),
}

/// Why reading failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A message exceeded the configured maximum size.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the offending message.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The peer broke the WebSocket protocol (bad frame, reserved opcode,
    /// invalid close code, ...): close 1002.
    #[error("websocket protocol violation")]
    Protocol,
    /// A text message (or a close reason) that is not valid UTF-8: close
    /// 1007 (RFC 6455 §8.1).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The transport failed or was reset.
    #[error("transport error")]
    Io,
}

/// Reads the next item the session should act on.
pub async fn next_inbound<S>(stream: &mut S) -> Result<Inbound, ReadError>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        return match stream.next().await {
            None => Ok(Inbound::Closed(None)),
            Some(Ok(Message::Text(t))) => Ok(Inbound::Text(t)),
            Some(Ok(Message::Binary(b))) => Ok(Inbound::Binary(b)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Inbound::Alive),
            Some(Ok(Message::Close(f))) => Ok(Inbound::Closed(f.map(|f| u16::from(f.code)))),
            Some(Ok(Message::Frame(_))) => continue,
            Some(Err(e)) => Err(map_error(e)),
        };
    }
}

fn map_error(e: WsError) -> ReadError {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            ReadError::TooLarge {
                size,
                max: max_size,
            }
        }
        WsError::Utf8(_) => ReadError::InvalidUtf8,
        WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => ReadError::Io,
        _ => ReadError::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    #[tokio::test]
    async fn maps_messages() {
        let items: Vec<Result<Message, WsError>> = vec![
            Ok(Message::Text("x".into())),
            Ok(Message::Ping(Bytes::new())),
            Err(WsError::Capacity(CapacityError::MessageTooLong {
                size: 20,
                max_size: 10,
            })),
            Err(WsError::Utf8("bad".into())),
        ];
        let mut s = stream::iter(items);
        assert_eq!(next_inbound(&mut s).await, Ok(Inbound::Text("x".into())));
        assert_eq!(next_inbound(&mut s).await, Ok(Inbound::Alive));
        assert_eq!(
            next_inbound(&mut s).await,
            Err(ReadError::TooLarge { size: 20, max: 10 })
        );
        assert_eq!(next_inbound(&mut s).await, Err(ReadError::InvalidUtf8));
        assert_eq!(next_inbound(&mut s).await, Ok(Inbound::Closed(None)));
    }
}
