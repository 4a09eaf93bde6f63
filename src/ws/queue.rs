//! The bounded outbound queue of one WebSocket.
//!
//! Owns: the frames waiting to be written to one socket, bounded by a message
//! count *and* a byte budget, plus the socket's pending control requests (one
//! ping, one close). Receives: [`Frame`]s from anyone holding an
//! [`OutboundTx`] (the hub's fan-out, the session, the REST API) through
//! [`OutboundTx::try_send`], which never waits. Hands on: batches of frames to
//! the single writer task (`ws::writer`) through [`OutboundRx`].
//!
//! A full queue is never awaited by fan-out: the sender gets
//! [`SendError::Full`] and the publish path calls [`OutboundTx::evict_slow`],
//! which asks the writer to close the socket with the close frame the front
//! chose for slow consumers (Pusher: 4100).
//!
//! A socket's replies to its *own* requests never evict it: the session
//! queues them with [`OutboundTx::send_reply`] (not refused for room) and,
//! before it reads the peer's next message, awaits [`OutboundTx::room`] —
//! the queue below half its limits. A peer that bursts requests is thus
//! slowed to the pace it reads its answers (backpressure on its TCP
//! stream), its replies hold at most half the queue plus one message's
//! worth, and the other half stays for fan-out.
//!
//! The queue is a `VecDeque` behind a short `parking_lot` lock instead of a
//! tokio mpsc channel: an idle socket then owns no buffer at all, and count,
//! bytes and control state change under one lock.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One outbound WebSocket data frame, serialised once and shared by reference
/// count between every socket it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text frame; already known to be UTF-8, so no per-socket validation.
    Text(Utf8Bytes),
    /// A binary frame (Phoenix v2 broadcasts).
    Binary(Bytes),
}

impl Frame {
    /// Payload length in bytes, used for the byte budget.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Frame::Text(t) => t.as_bytes(),
            Frame::Binary(b) => b,
        }
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Self {
        Frame::Text(Utf8Bytes::from(s))
    }
}

impl From<&'static str> for Frame {
    fn from(s: &'static str) -> Self {
        Frame::Text(Utf8Bytes::from_static(s))
    }
}

/// A close frame to send: code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseSpec {
    /// WebSocket close code (1000, 4100, 4200, ...).
    pub code: u16,
    /// Close reason; at most 123 bytes go on the wire.
    pub reason: Cow<'static, str>,
}

impl CloseSpec {
    /// A close frame with a static reason.
    pub const fn new(code: u16, reason: &'static str) -> Self {
        CloseSpec {
            code,
            reason: Cow::Borrowed(reason),
        }
    }
}

/// Limits of one socket's queue.
#[derive(Clone, Debug)]
pub struct QueueLimits {
    /// Most frames waiting at once.
    pub max_messages: usize,
    /// Most payload bytes waiting at once.
    pub max_bytes: usize,
    /// The close frame sent when the socket is evicted as a slow consumer.
    pub slow_close: CloseSpec,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_messages: 1000,
            max_bytes: 4 * 1024 * 1024,
            slow_close: CloseSpec::new(4100, "Slow consumer"),
        }
    }
}

/// Why [`OutboundTx::try_send`] refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The queue is at its message or byte limit.
    #[error("outbound queue full ({messages} messages, {bytes} bytes queued)")]
    Full {
        /// Frames queued when the send was refused.
        messages: usize,
        /// Bytes queued when the send was refused.
        bytes: usize,
    },
    /// The socket is closing or its writer has gone.
    #[error("socket closed")]
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Frame>,
    bytes: usize,
    ping: bool,
    close: Option<CloseSpec>,
    /// Set when the close request must not wait for queued frames.
    close_now: bool,
    writer_gone: bool,
    /// The session waits in [`OutboundTx::room`] for the writer to drain.
    reader_waiting: bool,
}

impl State {
    /// Whether the session may read its peer's next request: the queue is
    /// below half its limits (or closing, which ends the wait too).
    fn has_room(&self, limits: &QueueLimits) -> bool {
        self.close.is_some()
            || self.writer_gone
            || (self.queue.len() * 2 < limits.max_messages && self.bytes * 2 < limits.max_bytes)
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
    /// Wakes a writer stuck in a write when the socket must close now.
    urgent: Notify,
    /// Wakes the session waiting in [`OutboundTx::room`].
    room: Notify,
    limits: QueueLimits,
}

/// The sending side; cheap to clone, held by the session and the hub.
#[derive(Clone, Debug)]
pub struct OutboundTx {
    shared: Arc<Shared>,
}

/// The receiving side, owned by the writer task.
#[derive(Debug)]
pub struct OutboundRx {
    shared: Arc<Shared>,
}

/// Creates one socket's queue.
pub fn outbound(limits: QueueLimits) -> (OutboundTx, OutboundRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            bytes: 0,
            ping: false,
            close: None,
            close_now: false,
            writer_gone: false,
            reader_waiting: false,
        }),
        notify: Notify::new(),
        urgent: Notify::new(),
        room: Notify::new(),
        limits,
    });
    (
        OutboundTx {
            shared: shared.clone(),
        },
        OutboundRx { shared },
    )
}

impl OutboundTx {
    /// Queues a frame without waiting.
    pub fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        self.enqueue(frame, false, false)
    }

    /// Queues a frame ahead of everything already waiting (protocol
    /// keep-alive replies such as Phoenix heartbeats, which must not sit
    /// behind a burst of fan-out). Same limits as [`try_send`](Self::try_send).
    pub fn try_send_first(&self, frame: Frame) -> Result<(), SendError> {
        self.enqueue(frame, true, false)
    }

    /// Queues the session's reply to its own peer's request. Never refused
    /// for room (only when closed): the session bounds these by awaiting
    /// [`room`](Self::room) before it reads the next request, so a peer's
    /// burst of requests slows the peer instead of evicting it.
    pub fn send_reply(&self, frame: Frame) -> Result<(), SendError> {
        self.enqueue(frame, false, true)
    }

    /// [`send_reply`](Self::send_reply) ahead of everything waiting, as
    /// [`try_send_first`](Self::try_send_first).
    pub fn send_reply_first(&self, frame: Frame) -> Result<(), SendError> {
        self.enqueue(frame, true, true)
    }

    /// Resolves when the queue is below half its limits (or the socket is
    /// closing): the session awaits it before reading its peer's next
    /// request. Cancel-safe.
    pub async fn room(&self) {
        loop {
            {
                let mut st = self.shared.state.lock();
                if st.has_room(&self.shared.limits) {
                    return;
                }
                st.reader_waiting = true;
            }
            // A wake-up between the unlock and this await is kept as
            // `Notify`'s permit.
            self.shared.room.notified().await;
        }
    }

    fn enqueue(&self, frame: Frame, first: bool, reply: bool) -> Result<(), SendError> {
        let len = frame.len();
        let limits = &self.shared.limits;
        let was_empty = {
            let mut st = self.shared.state.lock();
            if st.close.is_some() || st.writer_gone {
                return Err(SendError::Closed);
            }
            if !reply
                && (st.queue.len() >= limits.max_messages
                    || (st.bytes + len > limits.max_bytes && !st.queue.is_empty()))
            {
                return Err(SendError::Full {
                    messages: st.queue.len(),
                    bytes: st.bytes,
                });
            }
            st.bytes += len;
            if first {
                st.queue.push_front(frame);
            } else {
                st.queue.push_back(frame);
            }
            st.queue.len() == 1
        };
        if was_empty {
            self.shared.notify.notify_one();
        }
        Ok(())
    }

    /// Asks the writer to send one ping control frame.
    pub fn ping(&self) {
        self.shared.state.lock().ping = true;
        self.shared.notify.notify_one();
    }

    /// Asks the writer to close the socket after flushing what is queued.
    /// The first close request wins.
    pub fn close(&self, spec: CloseSpec) {
        let _ = self.request_close(spec, false);
    }

    /// Asks the writer to drop what is queued and close at once.
    pub fn close_now(&self, spec: CloseSpec) {
        let _ = self.request_close(spec, true);
    }

    /// Evicts the socket as a slow consumer: queued frames are dropped and
    /// the close frame from [`QueueLimits::slow_close`] is sent.
    pub fn evict_slow(&self) {
        if self.request_close(self.shared.limits.slow_close.clone(), true) {
            crate::metrics::slow_consumer_closed();
        }
    }

    /// Asks the writer to close; false when a close was already asked for.
    fn request_close(&self, spec: CloseSpec, now: bool) -> bool {
        {
            let mut st = self.shared.state.lock();
            if st.close.is_some() {
                return false;
            }
            st.close = Some(spec);
            st.close_now = now;
        }
        self.shared.notify.notify_one();
        self.shared.room.notify_one();
        if now {
            self.shared.urgent.notify_one();
        }
        true
    }

    /// Whether a close was requested or the writer has gone.
    pub fn is_closed(&self) -> bool {
        let st = self.shared.state.lock();
        st.close.is_some() || st.writer_gone
    }

    /// Frames and bytes waiting now.
    pub fn queued(&self) -> (usize, usize) {
        let st = self.shared.state.lock();
        (st.queue.len(), st.bytes)
    }

    /// Whether two handles point at the same socket.
    pub fn same_socket(&self, other: &OutboundTx) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// What the writer must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Work {
    /// Write these frames (then look again).
    Frames(Vec<Frame>),
    /// Send a ping control frame.
    Ping,
    /// Send this close frame and stop.
    Close(CloseSpec),
}

impl OutboundRx {
    /// Waits for the next piece of work. Frames come in batches so the writer
    /// can feed them all and flush once. `buf` is reused between calls.
    pub async fn next(&mut self, mut buf: Vec<Frame>) -> Work {
        loop {
            {
                let mut st = self.shared.state.lock();
                if st.close_now
                    && let Some(spec) = st.close.clone()
                {
                    st.queue.clear();
                    st.bytes = 0;
                    return Work::Close(spec);
                }
                if st.ping {
                    st.ping = false;
                    return Work::Ping;
                }
                if !st.queue.is_empty() {
                    buf.clear();
                    buf.extend(st.queue.drain(..));
                    st.bytes = 0;
                    // Give back memory after a burst so idle sockets stay small.
                    if st.queue.capacity() > 64 {
                        st.queue.shrink_to(0);
                    }
                    if std::mem::take(&mut st.reader_waiting) {
                        self.shared.room.notify_one();
                    }
                    return Work::Frames(buf);
                }
                if let Some(spec) = st.close.clone() {
                    return Work::Close(spec);
                }
            }
            self.shared.notify.notified().await;
        }
    }
}

impl OutboundRx {
    /// Resolves when an immediate close (eviction, `close_now`) is
    /// requested, with its close frame; lets the writer abandon a write the
    /// peer is not reading.
    pub async fn urgent_close(&self) -> CloseSpec {
        loop {
            {
                let st = self.shared.state.lock();
                if st.close_now
                    && let Some(spec) = st.close.clone()
                {
                    return spec;
                }
            }
            self.shared.urgent.notified().await;
        }
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock();
            st.writer_gone = true;
            st.queue.clear();
            st.bytes = 0;
        }
        self.shared.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(msgs: usize, bytes: usize) -> QueueLimits {
        QueueLimits {
            max_messages: msgs,
            max_bytes: bytes,
            slow_close: CloseSpec::new(4100, "slow"),
        }
    }

    #[tokio::test]
    async fn bounded_by_count() {
        let (tx, mut rx) = outbound(limits(2, 1000));
        tx.try_send(Frame::from("a")).unwrap();
        tx.try_send(Frame::from("b")).unwrap();
        assert_eq!(
            tx.try_send(Frame::from("c")),
            Err(SendError::Full {
                messages: 2,
                bytes: 2
            })
        );
        let work = rx.next(Vec::new()).await;
        assert_eq!(work, Work::Frames(vec![Frame::from("a"), Frame::from("b")]));
        tx.try_send(Frame::from("c")).unwrap();
    }

    #[tokio::test]
    async fn first_frames_jump_the_queue() {
        let (tx, mut rx) = outbound(limits(10, 1 << 20));
        tx.try_send(Frame::from("fanout-1")).unwrap();
        tx.try_send(Frame::from("fanout-2")).unwrap();
        tx.try_send_first(Frame::from("heartbeat-reply")).unwrap();
        let Work::Frames(frames) = rx.next(Vec::new()).await else {
            panic!("expected frames");
        };
        let order: Vec<&[u8]> = frames.iter().map(Frame::as_bytes).collect();
        assert_eq!(order, [&b"heartbeat-reply"[..], b"fanout-1", b"fanout-2"]);
    }

    #[tokio::test]
    async fn bounded_by_bytes() {
        let (tx, _rx) = outbound(limits(100, 10));
        tx.try_send(Frame::from("123456")).unwrap();
        assert!(matches!(
            tx.try_send(Frame::from("123456")),
            Err(SendError::Full { messages: 1, .. })
        ));
        assert_eq!(tx.queued(), (1, 6));
    }

    #[tokio::test]
    async fn oversized_single_frame_fits_an_empty_queue() {
        let (tx, _rx) = outbound(limits(100, 4));
        tx.try_send(Frame::from("123456")).unwrap();
    }

    #[tokio::test]
    async fn evict_slow_drops_queue_and_closes() {
        let (tx, mut rx) = outbound(limits(1, 100));
        tx.try_send(Frame::from("a")).unwrap();
        assert!(tx.try_send(Frame::from("b")).is_err());
        tx.evict_slow();
        assert_eq!(
            rx.next(Vec::new()).await,
            Work::Close(CloseSpec::new(4100, "slow"))
        );
        assert_eq!(tx.try_send(Frame::from("c")), Err(SendError::Closed));
        assert!(tx.is_closed());
    }

    #[tokio::test]
    async fn graceful_close_flushes_first() {
        let (tx, mut rx) = outbound(limits(10, 100));
        tx.try_send(Frame::from("a")).unwrap();
        tx.close(CloseSpec::new(4200, "bye"));
        tx.close(CloseSpec::new(1000, "ignored"));
        assert_eq!(
            rx.next(Vec::new()).await,
            Work::Frames(vec![Frame::from("a")])
        );
        assert_eq!(
            rx.next(Vec::new()).await,
            Work::Close(CloseSpec::new(4200, "bye"))
        );
    }

    #[tokio::test]
    async fn ping_and_wakeup() {
        let (tx, mut rx) = outbound(QueueLimits::default());
        let t = tokio::spawn(async move { rx.next(Vec::new()).await });
        tokio::task::yield_now().await;
        tx.ping();
        assert_eq!(t.await.unwrap(), Work::Ping);
    }

    #[tokio::test]
    async fn replies_are_never_refused_and_hold_the_reader_instead() {
        let (tx, mut rx) = outbound(limits(4, 1 << 20));
        for _ in 0..2 {
            tx.try_send(Frame::from("fanout")).unwrap();
        }
        // Half full: the session must not read its peer's next request.
        let room = tokio::time::timeout(Duration::from_millis(20), tx.room()).await;
        assert!(room.is_err(), "no room at half the limit");
        // Replies go past the limit; fan-out does not.
        for _ in 0..5 {
            tx.send_reply(Frame::from("reply")).unwrap();
        }
        tx.send_reply_first(Frame::from("heartbeat")).unwrap();
        assert_eq!(tx.queued().0, 8);
        assert!(matches!(
            tx.try_send(Frame::from("fanout")),
            Err(SendError::Full { .. })
        ));
        assert!(!tx.is_closed(), "a reply burst evicts nobody");
        let waiter = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.room().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let Work::Frames(frames) = rx.next(Vec::new()).await else {
            panic!("expected frames");
        };
        assert_eq!(frames.len(), 8);
        assert_eq!(frames[0], Frame::from("heartbeat"));
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the drain wakes the reader")
            .unwrap();
    }

    #[tokio::test]
    async fn a_closing_socket_releases_the_reader() {
        let (tx, rx) = outbound(limits(2, 1 << 20));
        tx.send_reply(Frame::from("a")).unwrap();
        let waiter = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.room().await })
        };
        tokio::task::yield_now().await;
        drop(rx);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("writer gone ends the wait")
            .unwrap();
        assert_eq!(tx.send_reply(Frame::from("b")), Err(SendError::Closed));
    }

    #[tokio::test]
    async fn dropped_writer_refuses_sends() {
        let (tx, rx) = outbound(QueueLimits::default());
        drop(rx);
        assert_eq!(tx.try_send(Frame::from("a")), Err(SendError::Closed));
    }
}
