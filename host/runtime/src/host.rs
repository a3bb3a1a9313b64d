//! What a plugin's store holds, and the host side of its imports: the cache and log interfaces (one
//! implementation for both contract versions), WASI p2 with nothing granted (no files,
//! environment, arguments, network or real clocks; guest stdout/stderr go to `tracing`), the
//! memory limiter (cap and high-water mark), and the log rate limit each plugin shares across its
//! calls ([`LogLimiter`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmop_contract::{CacheReader, Gvk};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// At most this many bytes of one plugin's stdout and stderr are forwarded per call.
const OUTPUT_BUDGET: usize = 64 * 1024;
/// Longer lines are cut.
const MAX_LINE: usize = 4 * 1024;
/// Lines a plugin may log per second (its `log` calls and stdout/stderr lines together, over all its
/// calls), and in a burst: a token bucket, so a plugin logging in a loop costs the host a counter
/// increment per line instead of a formatted log record.
pub(crate) const LOG_LINES_PER_SECOND: f64 = 100.0;
pub(crate) const LOG_BURST: f64 = 1000.0;
/// How much of the guest's stderr is kept for the message of a trap (a Rust panic message).
const STDERR_TAIL: usize = 2 * 1024;

/// The data of one plugin store: one reconcile (or the `metadata` call at load).
pub(crate) struct HostState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    cache: Arc<dyn CacheReader>,
    pub(crate) limiter: MemoryLimiter,
    stdout: GuestOutput,
    stderr: GuestOutput,
    log: Arc<LogLimiter>,
    /// Set by the epoch callback when the call ran past its deadline.
    pub(crate) timed_out: bool,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, cache: Arc<dyn CacheReader>, memory_bytes: u64) -> Self {
        let log = Arc::new(LogLimiter::new());
        let stdout = GuestOutput::new(plugin.clone(), Stream::Stdout, log.clone());
        let stderr = GuestOutput::new(plugin.clone(), Stream::Stderr, log.clone());
        // `WasiCtxBuilder::new()` already gives no environment, arguments, preopened directories
        // or stdin, and denies every socket address; the explicit calls keep it so.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(FrozenMonotonicClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            plugin,
            wasi,
            table: ResourceTable::new(),
            cache,
            limiter: MemoryLimiter::new(memory_bytes),
            stdout,
            stderr,
            log,
            timed_out: false,
        }
    }

    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Makes this call's log lines count against `log`: the plugin's limiter, shared by its calls
    /// (a fresh store has one of its own, for the `metadata` call at load).
    pub(crate) fn share_log_limiter(&mut self, log: Arc<LogLimiter>) {
        self.stdout.set_limiter(log.clone());
        self.stderr.set_limiter(log.clone());
        self.log = log;
    }

    /// The end of what the guest wrote to stderr (a Rust guest's panic message), for trap reports,
    /// without the standard library's hint about `RUST_BACKTRACE`.
    pub(crate) fn stderr_tail(&self) -> String {
        let tail = self.stderr.tail();
        tail.lines()
            .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE=1`"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// `cache.get`, the same in every world.
    fn cache_get(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<String> {
        self.cache.get(kind, namespace, name).map(|v| v.to_string())
    }

    /// `cache.list`, the same in every world.
    fn cache_list(&self, kind: &Gvk, namespace: Option<&str>, label_selector: Option<&str>) -> Vec<String> {
        self.cache
            .list(kind, namespace, label_selector)
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    /// `log.log`, the same in every world: into `tracing`, tagged with the plugin, within the
    /// plugin's log rate limit.
    fn log_line(&mut self, level: tracing::Level, message: &str) {
        if !self.log.admit(&self.plugin) {
            return;
        }
        let message = cut(message, MAX_LINE);
        let plugin = &*self.plugin;
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "wasmop::plugin", plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "wasmop::plugin", plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "wasmop::plugin", plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "wasmop::plugin", plugin, "{message}"),
            tracing::Level::ERROR => tracing::error!(target: "wasmop::plugin", plugin, "{message}"),
        }
    }
}

/// The generated `Host` traits of one world's imports, delegating to the shared implementation
/// above (the `cache` and `log` interfaces are the same in every contract version; only the
/// generated types differ).
macro_rules! host_imports {
    ($world:ident) => {
        impl crate::bindings::$world::types::Host for HostState {}

        impl crate::bindings::$world::cache::Host for HostState {
            fn get(
                &mut self,
                kind: crate::bindings::$world::types::Gvk,
                namespace: Option<String>,
                name: String,
            ) -> Option<String> {
                let kind = Gvk::new(kind.group, kind.version, kind.kind);
                self.cache_get(&kind, namespace.as_deref(), &name)
            }

            fn list(
                &mut self,
                kind: crate::bindings::$world::types::Gvk,
                namespace: Option<String>,
                label_selector: Option<String>,
            ) -> Vec<String> {
                let kind = Gvk::new(kind.group, kind.version, kind.kind);
                self.cache_list(&kind, namespace.as_deref(), label_selector.as_deref())
            }
        }

        impl crate::bindings::$world::log::Host for HostState {
            fn log(&mut self, level: crate::bindings::$world::log::Level, message: String) {
                use crate::bindings::$world::log::Level;
                let level = match level {
                    Level::Trace => tracing::Level::TRACE,
                    Level::Debug => tracing::Level::DEBUG,
                    Level::Info => tracing::Level::INFO,
                    Level::Warn => tracing::Level::WARN,
                    Level::Error => tracing::Level::ERROR,
                };
                self.log_line(level, &message);
            }
        }
    };
}

host_imports!(v0_2);
host_imports!(v0_1);

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The log rate limit of one plugin, shared by all its calls: a token bucket of
/// [`LOG_BURST`] lines refilled at [`LOG_LINES_PER_SECOND`]. A line past it is dropped and counted;
/// the first line dropped says so in the host's log, and the next line let through is preceded by
/// the number dropped meanwhile — two host log lines per flood, however long it lasts.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    bucket: Mutex<Bucket>,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Lines dropped since the last one let through.
    dropping: u64,
}

impl LogLimiter {
    pub(crate) fn new() -> LogLimiter {
        LogLimiter {
            bucket: Mutex::new(Bucket {
                tokens: LOG_BURST,
                last: Instant::now(),
                dropping: 0,
            }),
            dropped: AtomicU64::new(0),
        }
    }

    /// Lines dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether one more line of `plugin` may be logged now.
    fn admit(&self, plugin: &str) -> bool {
        self.admit_at(plugin, Instant::now())
    }

    fn admit_at(&self, plugin: &str, now: Instant) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * LOG_LINES_PER_SECOND).min(LOG_BURST);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            let dropped = std::mem::take(&mut b.dropping);
            if dropped > 0 {
                tracing::warn!(target: "wasmop::plugin", plugin, dropped,
                    "{dropped} log lines of the plugin were dropped by its log rate limit");
            }
            return true;
        }
        b.dropping += 1;
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if b.dropping == 1 {
            tracing::warn!(target: "wasmop::plugin", plugin,
                "the plugin logs faster than {LOG_LINES_PER_SECOND} lines/s (bursts of {LOG_BURST}); \
                 dropping its lines until it slows down (counted in wasmop_plugin_log_lines_dropped_total)");
        }
        false
    }
}

/// Caps the linear memory of one store: the sum of all its memories, counted from instantiation.
/// A refused growth makes `memory.grow` return -1 to the guest (which usually aborts, a trap) and
/// records that the cap was hit, so the caller reports `OutOfMemory` rather than a plain trap.
/// It also records the peak of that sum (the call's memory high-water mark).
pub(crate) struct MemoryLimiter {
    cap: u64,
    used: u64,
    peak: u64,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    fn new(cap: u64) -> Self {
        MemoryLimiter {
            cap,
            used: 0,
            peak: 0,
            hit: false,
        }
    }

    /// The most linear memory (all memories together) the store held at once; refused growths
    /// are not counted.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current) as u64;
        if self.used.saturating_add(grow) > self.cap {
            self.hit = true;
            return Ok(false);
        }
        self.used += grow;
        self.peak = self.peak.max(self.used);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The pooling allocator caps table sizes too; this only refuses absurd requests early.
        Ok(desired <= 1 << 20)
    }
}

/// The guest's wall clock: always the Unix epoch. Plugins are functions of their snapshot.
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// The guest's monotonic clock: stopped at zero.
struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A guest's stdout or stderr: split into lines, each forwarded to `tracing` with the plugin's name
/// (stdout at info, stderr at warn), up to a budget per call. Clones share their state.
#[derive(Clone)]
struct GuestOutput(Arc<Mutex<OutputState>>);

struct OutputState {
    plugin: Arc<str>,
    stream: Stream,
    limiter: Arc<LogLimiter>,
    line: Vec<u8>,
    forwarded: usize,
    tail: VecDeque<u8>,
}

impl GuestOutput {
    fn new(plugin: Arc<str>, stream: Stream, limiter: Arc<LogLimiter>) -> Self {
        GuestOutput(Arc::new(Mutex::new(OutputState {
            plugin,
            stream,
            limiter,
            line: Vec::new(),
            forwarded: 0,
            tail: VecDeque::new(),
        })))
    }

    fn write(&self, bytes: &[u8]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(bytes);
    }

    fn set_limiter(&self, limiter: Arc<LogLimiter>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).limiter = limiter;
    }

    fn tail(&self) -> String {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = state.tail.as_slices();
        let bytes = [a, b].concat();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }
}

impl OutputState {
    fn write(&mut self, bytes: &[u8]) {
        if self.stream == Stream::Stderr {
            self.tail.extend(bytes);
            let excess = self.tail.len().saturating_sub(STDERR_TAIL);
            self.tail.drain(..excess);
        }
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let (text, newline) = match chunk.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (chunk, false),
            };
            let room = MAX_LINE.saturating_sub(self.line.len());
            self.line.extend_from_slice(&text[..text.len().min(room)]);
            if newline {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        let line = std::mem::take(&mut self.line);
        let budget_left = OUTPUT_BUDGET.saturating_sub(self.forwarded);
        if budget_left == 0 {
            return;
        }
        self.forwarded += line.len() + 1;
        if !self.limiter.admit(&self.plugin) {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        let plugin = &*self.plugin;
        match self.stream {
            Stream::Stdout => tracing::info!(target: "wasmop::plugin", plugin, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(target: "wasmop::plugin", plugin, stream = "stderr", "{text}"),
        }
        if self.forwarded >= OUTPUT_BUDGET {
            tracing::warn!(target: "wasmop::plugin", plugin,
                "more than {OUTPUT_BUDGET} bytes of output in one call; dropping the rest");
        }
    }
}

impl Drop for OutputState {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        GuestOutput::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_caps_the_sum_of_memories_and_remembers_a_refusal() {
        let mut l = MemoryLimiter::new(10 << 20);
        assert!(l.memory_growing(0, 6 << 20, None).unwrap());
        assert!(l.memory_growing(0, 3 << 20, None).unwrap());
        assert!(!l.hit);
        assert!(!l.memory_growing(6 << 20, 8 << 20, None).unwrap());
        assert!(l.hit);
        assert_eq!(l.peak(), 9 << 20, "a refused growth is not counted");
        assert!(l.memory_growing(3 << 20, 4 << 20, None).unwrap());
        assert_eq!(l.peak(), 10 << 20);
    }

    #[test]
    fn stderr_keeps_a_tail_and_lines_are_split() {
        let out = GuestOutput::new("p".into(), Stream::Stderr, Arc::new(LogLimiter::new()));
        out.write(b"first line\nthread 'main' panicked at src/lib.rs:3:5:\n");
        out.write(b"boom\n");
        assert_eq!(
            out.tail(),
            "first line\nthread 'main' panicked at src/lib.rs:3:5:\nboom"
        );
        let state = out.0.lock().unwrap();
        assert!(state.line.is_empty());
        assert_eq!(
            state.forwarded,
            "first line\nthread 'main' panicked at src/lib.rs:3:5:\nboom\n".len()
        );
        drop(state);
        out.write(&vec![b'x'; 3 * STDERR_TAIL]);
        assert_eq!(out.tail().len(), STDERR_TAIL);
        assert_eq!(out.0.lock().unwrap().line.len(), MAX_LINE);
    }

    #[test]
    fn output_past_the_budget_is_dropped() {
        let out = GuestOutput::new("p".into(), Stream::Stdout, Arc::new(LogLimiter::new()));
        let line = [vec![b'y'; 1023], vec![b'\n']].concat();
        for _ in 0..200 {
            out.write(&line);
        }
        assert_eq!(out.0.lock().unwrap().forwarded, OUTPUT_BUDGET);
        assert!(out.tail().is_empty(), "stdout keeps no tail");
    }

    #[test]
    fn the_log_limit_is_a_token_bucket_shared_by_calls() {
        let log = LogLimiter::new();
        let start = Instant::now();
        // A burst goes through whole, then lines are dropped and counted.
        let burst = (0..5000).filter(|_| log.admit_at("p", start)).count();
        assert_eq!(burst, LOG_BURST as usize);
        assert_eq!(log.dropped(), 5000 - LOG_BURST as u64);
        // A second later the bucket has a second's worth of lines again, no more.
        let later = start + Duration::from_secs(1);
        let refilled = (0..5000).filter(|_| log.admit_at("p", later)).count();
        assert_eq!(refilled, LOG_LINES_PER_SECOND as usize);
        // A plugin's stdout counts against the same limiter.
        let out = GuestOutput::new("p".into(), Stream::Stdout, Arc::new(LogLimiter::new()));
        let shared = Arc::new(LogLimiter::new());
        out.set_limiter(shared.clone());
        for _ in 0..(LOG_BURST as usize + 10) {
            out.write(b"x\n");
        }
        assert_eq!(shared.dropped(), 10);
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("hello", 10), "hello");
    }
}
