//! What the stall watchdog watches: when a job last decoded audio and last read source
//! bytes (through [`CountingSource`]), and whether it is waiting on its client.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::decode::MediaSource;
use crate::source::RemoteSource;

/// When the job last decoded audio and last read source bytes, and whether it is
/// waiting on its client.
#[derive(Default)]
pub(super) struct Liveness {
    started: std::sync::OnceLock<Instant>,
    last_audio_ms: AtomicU64,
    last_read_ms: AtomicU64,
    pub(super) in_sink: AtomicBool,
    pub(super) stalled: AtomicBool,
}

impl Liveness {
    fn now_ms(&self) -> u64 {
        self.started.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    pub(super) fn mark_audio(&self) {
        self.last_audio_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn mark_read(&self) {
        self.last_read_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// True when source bytes keep arriving but neither audio nor the client has moved
    /// for `limit`. A source that sends nothing is left to the read idle timeout (and
    /// its resume).
    pub(super) fn is_stalled(&self, limit: Duration) -> bool {
        let last_audio_ms = self.last_audio_ms.load(Ordering::Relaxed);
        !self.in_sink.load(Ordering::Relaxed)
            && self.last_read_ms.load(Ordering::Relaxed) > last_audio_ms
            && self.now_ms().saturating_sub(last_audio_ms) > limit.as_millis() as u64
    }
}

/// A remote source that counts the bytes the decoder reads and tells the watchdog when.
pub(super) struct CountingSource {
    pub(super) inner: RemoteSource,
    pub(super) bytes: Arc<AtomicU64>,
    liveness: Arc<Liveness>,
}

impl CountingSource {
    pub(super) fn new(inner: RemoteSource, liveness: Arc<Liveness>) -> Self {
        Self {
            inner,
            bytes: Arc::default(),
            liveness,
        }
    }
}

impl Read for CountingSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read > 0 {
            self.bytes.fetch_add(read as u64, Ordering::Relaxed);
            self.liveness.mark_read();
        }
        Ok(read)
    }
}

impl Seek for CountingSource {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl MediaSource for CountingSource {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}
