//! The tracing output of this test binary, captured in memory so a test
//! can check what portico logged (php's stderr lines).

use std::io::Write;
use std::sync::OnceLock;

use parking_lot::Mutex;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT: OnceLock<()> = OnceLock::new();

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per process).
pub(crate) fn capture() {
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("portico=info")
            .with_ansi(false)
            .with_writer(|| Sink)
            .try_init();
    });
}

/// Everything logged so far.
pub(crate) fn text() -> String {
    String::from_utf8_lossy(&LOG.lock()).into_owned()
}
