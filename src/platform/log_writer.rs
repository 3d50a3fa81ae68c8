//! A log writer that never blocks or wakes anything on the request path.
//!
//! Formatted lines are appended to an in-memory buffer under a short lock; a background
//! thread writes the buffer out in one write call, `FLUSH_EVERY` after the first line of a
//! batch (or sooner when it fills). An idle server wakes nothing; under load the flusher
//! wakes a few dozen times a second: every wake-up takes a core from the request threads,
//! and waking every 5 ms cost about 5% of throughput on two cores. Handing each line to a
//! writer thread instead (as `tracing-appender` does) costs a thread wake-up per line, which at tens of thousands of requests per second on
//! two cores is the single largest cost of logging. If output stalls and the buffer
//! reaches its cap, new lines are dropped and counted rather than blocking requests.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(25);
/// Wake the flusher early once this much is waiting (about 30 ms of request lines at
/// 150,000 requests a second).
const EARLY_FLUSH_BYTES: usize = 1024 * 1024;
/// Beyond this, lines are dropped (and counted) instead of growing memory.
const MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: u64,
    closing: bool,
}

struct Shared {
    buffer: Mutex<Buffer>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `MakeWriter` handed to the subscriber.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Flushes what is left and stops the flusher when dropped; keep it alive until exit.
pub struct FlushGuard {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// Starts the flusher thread writing to `out`.
pub fn batch_writer<W: Write + Send + 'static>(out: W) -> (BatchWriter, FlushGuard) {
    let shared = Arc::new(Shared {
        buffer: Mutex::new(Buffer::default()),
        wake: Condvar::new(),
    });
    let worker = shared.clone();
    let flusher = std::thread::Builder::new()
        .name("toolshed-log".into())
        .spawn(move || flush_loop(&worker, out))
        .ok();
    (
        BatchWriter {
            shared: shared.clone(),
        },
        FlushGuard { shared, flusher },
    )
}

fn flush_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut pending = Vec::with_capacity(EARLY_FLUSH_BYTES);
    loop {
        let (dropped, closing) = {
            let mut buffer = shared.lock();
            // Idle: sleep until the first line of a batch (or a dropped one) arrives.
            while buffer.bytes.is_empty() && buffer.dropped == 0 && !buffer.closing {
                buffer = shared.wake.wait(buffer).unwrap_or_else(|p| p.into_inner());
            }
            // Then let the batch gather, unless it is already large or the process is closing.
            let deadline = Instant::now() + FLUSH_EVERY;
            while buffer.bytes.len() < EARLY_FLUSH_BYTES && !buffer.closing {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                buffer = shared
                    .wake
                    .wait_timeout(buffer, left)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            std::mem::swap(&mut buffer.bytes, &mut pending);
            (std::mem::take(&mut buffer.dropped), buffer.closing)
        };
        if dropped > 0 {
            let _ = writeln!(
                pending,
                "{{\"level\":\"WARN\",\"message\":\"log output fell behind; {dropped} lines dropped\"}}"
            );
        }
        if !pending.is_empty() {
            // Nowhere to report a failed log write; the next batch tries again.
            let _ = out.write_all(&pending);
            let _ = out.flush();
            pending.clear();
            // A burst (or a moment when this thread did not get a core) can grow the
            // buffer; keep it from holding on to that memory for the life of the process.
            pending.shrink_to(EARLY_FLUSH_BYTES);
        }
        if closing {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// One line's writer: appends to the shared buffer.
pub struct LineWriter {
    shared: Arc<Shared>,
}

impl BatchWriter {
    /// Appends one whole line.
    pub fn append(&self, bytes: &[u8]) {
        append(&self.shared, bytes);
    }
}

fn append(shared: &Shared, bytes: &[u8]) {
    let wake = {
        let mut buffer = shared.lock();
        let before = buffer.bytes.len();
        if before + bytes.len() > MAX_BUFFERED_BYTES {
            buffer.dropped += 1;
            // The flusher sleeps while the buffer is empty; the warning must not wait for
            // the next line.
            before == 0 && buffer.dropped == 1
        } else {
            buffer.bytes.extend_from_slice(bytes);
            // Only the first line of a batch and the line that crosses the mark wake the
            // flusher: a wake is a syscall.
            before == 0 || (before < EARLY_FLUSH_BYTES && buffer.bytes.len() >= EARLY_FLUSH_BYTES)
        }
    };
    // Outside the lock, so the flusher does not wake only to wait for it.
    if wake {
        shared.wake.notify_one();
    }
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        append(&self.shared, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            shared: self.shared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_reaches_the_output_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batch_writer(sink.clone());
        for i in 0..1000 {
            let mut line = writer.make_writer();
            line.write_all(format!("line {i}\n").as_bytes())
                .expect("write");
        }
        drop(guard);
        let out = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        assert_eq!(out.lines().count(), 1000);
        assert!(out.ends_with("line 999\n"));
    }

    #[test]
    fn a_lone_line_is_written_soon_after_it_arrives() {
        let sink = Sink::default();
        let (writer, _guard) = batch_writer(sink.clone());
        // The flusher is asleep with nothing to write; one line must wake it.
        std::thread::sleep(FLUSH_EVERY * 2);
        writer.append(b"alone\n");
        let waited = Instant::now();
        while sink.0.lock().expect("sink").is_empty() {
            assert!(waited.elapsed() < FLUSH_EVERY * 40, "never flushed");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(sink.0.lock().expect("sink").as_slice(), b"alone\n");
    }

    #[test]
    fn a_line_too_large_to_keep_is_reported_without_waiting_for_the_next() {
        let sink = Sink::default();
        let (writer, _guard) = batch_writer(sink.clone());
        writer.append(&vec![b'x'; MAX_BUFFERED_BYTES + 1]);
        let waited = Instant::now();
        while sink.0.lock().expect("sink").is_empty() {
            assert!(
                waited.elapsed() < FLUSH_EVERY * 40,
                "the drop was never reported"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let out = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        assert!(out.contains("1 lines dropped"), "{out}");
    }
}
