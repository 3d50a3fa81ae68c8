//! How a log line looks: one JSON object per line, or a human-readable line; both carry the
//! id of the request being served.
//!
//! The request id travels in a task-local (set by the request-log middleware) rather than in
//! a tracing span: a span per request costs an allocation and a formatted copy of its fields,
//! and the stock JSON formatter re-parses span fields for every line. The JSON formatter here
//! writes straight into the line buffer with a timestamp cached per second, because the
//! request log line is written once per request and is the hottest code in the server.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::platform::log_writer::BatchWriter;

tokio::task_local! {
    /// The id of the request whose future is running (a header value: the same bytes are
    /// echoed in the response, so sharing them costs no copy).
    pub static REQUEST_ID: axum::http::HeaderValue;
}

/// The current request's id, if a request is being served on this task.
fn with_request_id<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    match REQUEST_ID.try_with(|id| id.clone()) {
        Ok(id) => f(id.to_str().ok()),
        Err(_) => f(None),
    }
}

/// Bytes that cannot stand as they are inside a JSON string.
const fn escape_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
}
static NEEDS_ESCAPE: [bool; 256] = escape_table();

/// Writes `s` as the inside of a JSON string. Works on bytes: every character that needs
/// escaping is ASCII, so it can never split a multi-byte character.
fn escape(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(offset) = bytes[start..]
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
    {
        let i = start + offset;
        out.write_str(&s[start..i])?;
        match bytes[i] {
            b'"' => out.write_str("\\\"")?,
            b'\\' => out.write_str("\\\\")?,
            b'\n' => out.write_str("\\n")?,
            b'\r' => out.write_str("\\r")?,
            b'\t' => out.write_str("\\t")?,
            b => write!(out, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    out.write_str(&s[start..])
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

thread_local! {
    /// The formatted `YYYY-MM-DDTHH:MM:SS` of the last second seen on this thread.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-24T02:52:16.123456Z`.
fn write_timestamp(out: &mut impl fmt::Write) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            let days = i64::try_from(secs / 86_400).unwrap_or(0);
            let (y, m, d) = civil_from_days(days);
            let rem = secs % 86_400;
            cache.1.clear();
            let _ = write!(
                cache.1,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            );
            cache.0 = secs;
        }
        out.write_str(&cache.1)
    })?;
    // A million plus the microseconds has seven digits: the last six are the zero-padded part.
    let mut digits = itoa::Buffer::new();
    let micros = digits.format(1_000_000 + now.subsec_micros());
    out.write_char('.')?;
    out.write_str(&micros[1..])?;
    out.write_char('Z')
}

/// Lets `escape` and `write_timestamp` append to the byte buffer of the fast path.
struct ByteSink<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes an event's fields as `,"name":value` pairs.
struct JsonFields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.out.write_str(",\"")?;
        escape(self.out, field.name())?;
        self.out.write_str("\":")
    }

    fn put(&mut self, field: &Field, f: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| f(self.out));
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |out| {
            out.write_char('"')?;
            escape(out, value)?;
            out.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.put(field, |out| write!(out, "{value}"));
        } else {
            self.put(field, |out| write!(out, "\"{value}\""));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |out| {
            out.write_char('"')?;
            let mut escaper = Escaper(out);
            write!(escaper, "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// Escapes whatever is written through it.
struct Escaper<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape(self.0, s)
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Where the request log writes its JSON lines straight into the log writer, skipping the
/// subscriber: it is the one line written for every request, so its cost is the logging
/// cost of the server. The line is the same the subscriber would write. Made by
/// `telemetry::init` when lines are JSON and INFO is on; otherwise (and in tests that build
/// the app in-process) it is off and request lines go through `tracing`.
#[derive(Clone, Default)]
pub struct RequestLineSink(Option<BatchWriter>);

/// Fields of a JSON line being written. The line is bytes, not a `String`: numbers go in
/// as digits without a UTF-8 check, and everything else is appended from `&str`.
pub struct JsonLine<'a>(&'a mut Vec<u8>);

/// Field writers append directly: `write!` costs more than the rest of the line together.
impl JsonLine<'_> {
    #[inline]
    fn key(&mut self, name: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    #[inline]
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.key(name);
        self.0.push(b'"');
        let _ = escape(&mut ByteSink(self.0), value);
        self.0.push(b'"');
        self
    }

    /// A string known to need no escaping (an HTTP method, a route template, a validated
    /// request id), written as it is.
    #[inline]
    pub fn raw(&mut self, name: &str, value: &str) -> &mut Self {
        debug_assert!(!value.bytes().any(|b| NEEDS_ESCAPE[usize::from(b)]));
        self.key(name);
        self.0.push(b'"');
        self.0.extend_from_slice(value.as_bytes());
        self.0.push(b'"');
        self
    }

    #[inline]
    pub fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.key(name);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// A duration given in microseconds, written as milliseconds with three decimals.
    #[inline]
    pub fn millis(&mut self, name: &str, micros: u64) -> &mut Self {
        self.key(name);
        let mut digits = itoa::Buffer::new();
        self.0
            .extend_from_slice(digits.format(micros / 1000).as_bytes());
        self.0.push(b'.');
        // 1000 + the fraction has four digits: the last three are the zero-padded fraction.
        self.0
            .extend_from_slice(&digits.format(micros % 1000 + 1000).as_bytes()[1..]);
        self
    }

    #[inline]
    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.key(name);
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }
}

impl RequestLineSink {
    /// Lines go to `writer`.
    pub fn new(writer: BatchWriter) -> RequestLineSink {
        RequestLineSink(Some(writer))
    }

    /// Writes an INFO line with `message` and the fields `fill` adds, if the sink is on;
    /// answers `false` (writing nothing) when the caller must log through `tracing` instead.
    /// `target` and `message` are written as they are: pass constants.
    pub fn write_info_line(
        &self,
        target: &str,
        message: &str,
        fill: impl FnOnce(&mut JsonLine<'_>),
    ) -> bool {
        let Some(sink) = &self.0 else {
            return false;
        };
        write_line(sink, target, message, fill);
        true
    }
}

fn write_line(
    sink: &BatchWriter,
    target: &str,
    message: &str,
    fill: impl FnOnce(&mut JsonLine<'_>),
) {
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        line.extend_from_slice(b"{\"timestamp\":\"");
        let _ = write_timestamp(&mut ByteSink(&mut line));
        line.extend_from_slice(b"\",\"level\":\"INFO\"");
        let mut fields = JsonLine(&mut line);
        fields.raw("message", message);
        fill(&mut fields);
        line.extend_from_slice(b",\"target\":\"");
        line.extend_from_slice(target.as_bytes());
        line.extend_from_slice(b"\"}\n");
        sink.append(&line);
    });
}

/// One JSON object per line: timestamp, level, message, the event's fields, the request id
/// (when serving a request) and the target.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = JsonFields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        with_request_id(|id| match id {
            Some(id) => {
                writer.write_str(",\"request_id\":\"")?;
                escape(&mut writer, id)?;
                writer.write_char('"')
            }
            None => Ok(()),
        })?;
        writer.write_str(",\"target\":\"")?;
        escape(&mut writer, meta.target())?;
        writer.write_str("\"}\n")
    }
}

/// The stock human-readable line, prefixed with the request id when serving a request.
pub struct PrettyLines(pub Format);

impl<S, N> FormatEvent<S, N> for PrettyLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        with_request_id(|id| match id {
            Some(id) => write!(writer, "[{id}] "),
            None => Ok(()),
        })?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("capture").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    fn lines(capture: &Capture) -> Vec<serde_json::Value> {
        let text = String::from_utf8(capture.0.lock().expect("capture").clone()).expect("utf8");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    }

    #[tokio::test]
    async fn lines_are_valid_json_with_fields_and_the_request_id() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(capture.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!(
            path = "/a\"b\n",
            status = 200_u64,
            ratio = 0.5,
            ok = true,
            "plain"
        );
        REQUEST_ID
            .scope(axum::http::HeaderValue::from_static("req-1"), async {
                tracing::warn!(error = %"bad \\ thing", "inside a request");
            })
            .await;
        let lines = lines(&capture);
        assert_eq!(lines[0]["message"], "plain");
        assert_eq!(lines[0]["path"], "/a\"b\n");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["ratio"], 0.5);
        assert_eq!(lines[0]["ok"], true);
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0].get("request_id").is_none());
        assert_eq!(lines[1]["request_id"], "req-1");
        assert_eq!(lines[1]["error"], "bad \\ thing");
        let ts = lines[1]["timestamp"].as_str().expect("timestamp");
        assert_eq!(ts.len(), "2026-11-24T02:52:16.123456Z".len(), "{ts}");
    }

    #[test]
    fn fast_fields_write_valid_json_numbers() {
        let mut line = b"{\"a\":0".to_vec();
        JsonLine(&mut line)
            .u64("n", 1_234_567)
            .u64("z", 0)
            .millis("ms", 12_345)
            .millis("small", 7)
            .bool("ok", true)
            .str("s", "q\"x");
        line.push(b'}');
        let v: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(v["n"], 1_234_567);
        assert_eq!(v["z"], 0);
        assert_eq!(v["ms"], 12.345);
        assert_eq!(v["small"], 0.007);
        assert_eq!(v["ok"], true);
        assert_eq!(v["s"], "q\"x");
    }

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
