//! The single writer task of one WebSocket.
//!
//! Owns: the sink half of the socket; nobody else writes to it. Receives:
//! [`Work`] from the socket's [`OutboundRx`] (data frames, ping requests, the
//! close request). Hands on: frames to the peer, each batch fed then flushed
//! once under a write deadline (under [`super::server_socket`] the whole
//! batch then leaves in one socket write, see [`super::coalesce`]), and
//! finally a close frame; returns a
//! [`WriterExit`] saying why it stopped so the session can end.

use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::queue::{CloseSpec, Frame, OutboundRx, Work};

/// Why the writer stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum WriterExit {
    /// It sent this close frame (requested by the session, the hub or
    /// shutdown).
    Closed(CloseSpec),
    /// A write did not finish before the deadline.
    WriteTimeout,
    /// The sink failed (peer gone, io error).
    SinkError,
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(t) => Message::Text(t),
        Frame::Binary(b) => Message::Binary(b),
    }
}

/// A close frame's reason is limited to 123 bytes on the wire.
fn close_message(spec: &CloseSpec) -> Message {
    let mut end = spec.reason.len().min(123);
    while !spec.reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(spec.code),
        reason: Utf8Bytes::from(&spec.reason[..end]),
    }))
}

/// Runs the writer until a close was sent or the sink fails. Every write
/// (a batch plus its flush, a ping, the close) must finish within
/// `write_timeout`, so a peer that stops reading cannot pin the task.
pub async fn run_writer<S>(mut sink: S, mut rx: OutboundRx, write_timeout: Duration) -> WriterExit
where
    S: Sink<Message> + Unpin,
{
    let mut buf = Vec::new();
    loop {
        let work = rx.next(std::mem::take(&mut buf)).await;
        let res = match work {
            Work::Frames(mut frames) => {
                let fut = async {
                    for f in frames.drain(..) {
                        sink.feed(to_message(f)).await?;
                    }
                    sink.flush().await
                };
                // A peer that stops reading leaves this write pending; an
                // eviction must not wait for the write deadline.
                let r = tokio::select! {
                    r = tokio::time::timeout(write_timeout, fut) => r,
                    spec = rx.urgent_close() => return WriterExit::Closed(spec),
                };
                buf = frames;
                r
            }
            Work::Ping => {
                tokio::select! {
                    r = tokio::time::timeout(write_timeout, sink.send(Message::Ping(Default::default()))) => r,
                    spec = rx.urgent_close() => return WriterExit::Closed(spec),
                }
            }
            Work::Close(spec) => {
                // Best effort: the peer may already be gone. After the
                // peer's own close frame tungstenite refuses ours and has
                // queued its answer instead (the peer's code echoed, or 1002
                // for a code invalid on the wire): closing the sink flushes
                // that answer.
                let _ = tokio::time::timeout(write_timeout, async {
                    if sink.send(close_message(&spec)).await.is_err() {
                        let _ = sink.close().await;
                    }
                })
                .await;
                return WriterExit::Closed(spec);
            }
        };
        match res {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return WriterExit::SinkError,
            Err(_) => return WriterExit::WriteTimeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::coalesce::{Coalesce, testing::CountingIo};
    use crate::ws::queue::{QueueLimits, outbound};
    use futures_util::StreamExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::mpsc;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_util::sync::PollSender;

    fn sink() -> (PollSender<Message>, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(16);
        (PollSender::new(tx), rx)
    }

    #[tokio::test]
    async fn writes_frames_then_close() {
        let (tx, rx) = outbound(QueueLimits::default());
        let (sink, mut out) = sink();
        let task = tokio::spawn(run_writer(sink, rx, Duration::from_secs(1)));
        tx.try_send(Frame::from("hello")).unwrap();
        assert_eq!(out.recv().await, Some(Message::Text("hello".into())));
        tx.ping();
        assert!(matches!(out.recv().await, Some(Message::Ping(_))));
        tx.close(CloseSpec::new(4200, "bye"));
        let exit = task.await.unwrap();
        assert_eq!(exit, WriterExit::Closed(CloseSpec::new(4200, "bye")));
        match out.recv().await {
            Some(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 4200);
                assert_eq!(f.reason.as_str(), "bye");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn slow_consumer_gets_4100() {
        let limits = QueueLimits {
            max_messages: 2,
            ..QueueLimits::default()
        };
        let (tx, rx) = outbound(limits);
        tx.try_send(Frame::from("a")).unwrap();
        tx.try_send(Frame::from("b")).unwrap();
        assert!(tx.try_send(Frame::from("c")).is_err());
        tx.evict_slow();
        let (sink, mut out) = sink();
        let exit = run_writer(sink, rx, Duration::from_secs(1)).await;
        assert!(matches!(
            exit,
            WriterExit::Closed(CloseSpec { code: 4100, .. })
        ));
        // The queued frames were dropped, only the close went out.
        assert!(matches!(out.recv().await, Some(Message::Close(Some(_)))));
    }

    #[tokio::test]
    async fn eviction_abandons_a_stuck_write() {
        let (tx, rx) = outbound(QueueLimits::default());
        // A sink with room for one message that nobody drains.
        let (sink_tx, _keep) = mpsc::channel::<Message>(1);
        let sink = PollSender::new(sink_tx);
        let task = tokio::spawn(run_writer(sink, rx, Duration::from_secs(3600)));
        for _ in 0..3 {
            tx.try_send(Frame::from("x")).unwrap();
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.evict_slow();
        let exit = tokio::time::timeout(Duration::from_secs(2), task).await;
        assert!(matches!(
            exit,
            Ok(Ok(WriterExit::Closed(CloseSpec { code: 4100, .. })))
        ));
    }

    /// A server socket over an in-memory pipe of `cap` bytes, as the fronts
    /// build it (through [`Coalesce`]), with its socket writes counted, and
    /// the client end.
    async fn ws_pair(
        cap: usize,
    ) -> (
        futures_util::stream::SplitSink<WebSocketStream<Coalesce<CountingIo>>, Message>,
        futures_util::stream::SplitStream<WebSocketStream<Coalesce<CountingIo>>>,
        WebSocketStream<tokio::io::DuplexStream>,
        Arc<AtomicUsize>,
    ) {
        let (server_io, client_io) = tokio::io::duplex(cap);
        let (io, writes) = CountingIo::new(server_io);
        let server = crate::ws::server_socket(io, 1 << 16).await;
        let (sink, stream) = server.split();
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        (sink, stream, client, writes)
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_one_write_in_order_then_the_close() {
        let (tx, rx) = outbound(QueueLimits::default());
        for i in 0..100 {
            tx.try_send(Frame::from(format!("message {i}"))).unwrap();
        }
        tx.close(CloseSpec::new(4200, "bye"));
        let (sink, _stream, mut client, writes) = ws_pair(1 << 20).await;
        let exit = run_writer(sink, rx, Duration::from_secs(1)).await;
        assert_eq!(exit, WriterExit::Closed(CloseSpec::new(4200, "bye")));
        // One socket write for the 100 frames, one for the close frame.
        assert_eq!(writes.load(Ordering::Relaxed), 2);
        for i in 0..100 {
            let msg = client.next().await.unwrap().unwrap();
            assert_eq!(msg, Message::Text(format!("message {i}").into()));
        }
        match client.next().await {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4200),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn batches_after_the_first_are_written_whole_too() {
        let (tx, rx) = outbound(QueueLimits::default());
        let (sink, _stream, mut client, writes) = ws_pair(1 << 20).await;
        let task = tokio::spawn(run_writer(sink, rx, Duration::from_secs(1)));
        for round in 0..3 {
            for i in 0..10 {
                tx.try_send(Frame::from(format!("{round}.{i}"))).unwrap();
            }
            for i in 0..10 {
                let msg = client.next().await.unwrap().unwrap();
                assert_eq!(msg, Message::Text(format!("{round}.{i}").into()));
            }
            // The frames were queued before the writer woke: one write each round.
            assert_eq!(writes.load(Ordering::Relaxed), round + 1);
        }
        tx.close(CloseSpec::new(1000, ""));
        assert!(matches!(task.await.unwrap(), WriterExit::Closed(_)));
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_is_still_evicted() {
        let (tx, rx) = outbound(QueueLimits::default());
        // 4 KiB of pipe that the client never reads.
        let (sink, _stream, _client, _writes) = ws_pair(4096).await;
        let task = tokio::spawn(run_writer(sink, rx, Duration::from_secs(3600)));
        let big = "x".repeat(1000);
        for _ in 0..20 {
            tx.try_send(Frame::from(big.clone())).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished(), "the write should be stuck");
        tx.evict_slow();
        let exit = tokio::time::timeout(Duration::from_secs(2), task).await;
        assert!(matches!(
            exit,
            Ok(Ok(WriterExit::Closed(CloseSpec { code: 4100, .. })))
        ));
    }

    #[tokio::test]
    async fn the_peers_close_is_answered_by_tungstenites_reply() {
        for (sent, answer) in [(1000u16, 1000u16), (4000, 4000), (1005, 1002), (999, 1002)] {
            let (tx, rx) = outbound(QueueLimits::default());
            let (sink, mut stream, mut client, _writes) = ws_pair(1 << 16).await;
            client
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::from(sent),
                    reason: "".into(),
                })))
                .await
                .unwrap();
            let got = crate::ws::next_inbound(&mut stream).await;
            assert_eq!(got, Ok(crate::ws::Inbound::Closed(Some(answer))), "{sent}");
            tx.close(CloseSpec::new(1000, ""));
            let exit = run_writer(sink, rx, Duration::from_secs(1)).await;
            assert!(matches!(exit, WriterExit::Closed(_)));
            match client.next().await {
                Some(Ok(Message::Close(Some(f)))) => {
                    assert_eq!(u16::from(f.code), answer, "{sent}")
                }
                other => panic!("{sent}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn long_reason_is_cut_on_a_char_boundary() {
        let spec = CloseSpec {
            code: 4000,
            reason: "é".repeat(100).into(),
        };
        match close_message(&spec) {
            Message::Close(Some(f)) => assert!(f.reason.len() <= 123),
            _ => unreachable!(),
        }
    }
}
