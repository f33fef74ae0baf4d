//! [`RemoteSource`]: the blocking, seekable reader the decoder pulls bytes from.
//!
//! Reads wait on the download task with `Handle::block_on`, bounded by the read idle
//! timeout and the cancellation token. A body that breaks off, or goes silent for the
//! idle timeout (a half-open connection), is resumed with a Range request (validated
//! by `If-Range`) when the origin can serve one; a live stream is reconnected; anything
//! else fails. A truncated body is never reported as a clean end.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::Instant;

use bytes::Bytes;
use reqwest::Response;
use reqwest::header::HeaderValue;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::download::{Download, Piece};
use super::fetch::{Fetcher, RangeRequest};
use super::headers::{accepts_ranges, check_partial, looks_live, validator_of};
use super::{SourceError, SourceMeta};
use crate::decode::MediaSource;

/// Forward seeks up to this far are served by reading and discarding.
const SHORT_HOP_BYTES: u64 = 64 * 1024;

/// A source body being downloaded, read as a blocking `Read + Seek` stream.
///
/// Reads and seeks block: call them on a plain thread (e.g. `spawn_blocking`), never on
/// a runtime worker. The runtime that ran [`Fetcher::open`] must keep running (a
/// multi-thread runtime, or one driven by another thread). Errors are `io::Error`s of
/// kind `Other` carrying a [`SourceError`] (see [`super::source_error`]); a clean end of
/// a complete body reads as `Ok(0)`.
pub struct RemoteSource {
    meta: SourceMeta,
    fetcher: Fetcher,
    handle: Handle,
    cancel: CancellationToken,
    /// `If-Range` value: strong ETag, else Last-Modified.
    validator: Option<HeaderValue>,
    /// Whether Range requests work: `Some(true)` advertised or seen, `Some(false)`
    /// refused (`Accept-Ranges: none`), `None` unknown.
    ranges: Option<bool>,
    /// Whether the origin sent Icecast/Shoutcast (`icy-*`, `ice-*`) headers.
    live: bool,
    /// The body from `pos` on; `None` after a seek until the next read.
    download: Option<Download>,
    /// The chunk being read and how much of it has been read.
    chunk: Bytes,
    offset: usize,
    /// Stream position of the next byte `read` returns.
    pos: u64,
    resumes: u32,
    /// The error that ended the stream; every later read returns it again.
    failed: Option<SourceError>,
}

impl RemoteSource {
    pub(super) fn new(
        fetcher: Fetcher,
        handle: Handle,
        response: Response,
        meta: SourceMeta,
        cancel: CancellationToken,
    ) -> Self {
        let validator = validator_of(response.headers());
        let ranges = accepts_ranges(response.headers());
        let live = looks_live(response.headers());
        let bytes = fetcher.counters().bytes.clone();
        let download = Download::start(&handle, response, bytes, cancel.clone());
        Self {
            meta,
            fetcher,
            handle,
            cancel,
            validator,
            ranges,
            live,
            download: Some(download),
            chunk: Bytes::new(),
            offset: 0,
            pos: 0,
            resumes: 0,
            failed: None,
        }
    }

    /// What the origin said when the source was opened.
    pub fn meta(&self) -> &SourceMeta {
        &self.meta
    }

    fn at_end(&self) -> bool {
        self.meta
            .content_length
            .is_some_and(|length| self.pos >= length)
    }

    /// Makes the next unread bytes available in `chunk`; `false` at a clean end.
    fn fill(&mut self) -> Result<bool, SourceError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let filled = self.fill_from_network();
        if let Err(err) = &filled {
            self.failed = Some(err.clone());
            self.download = None;
        }
        filled
    }

    fn fill_from_network(&mut self) -> Result<bool, SourceError> {
        loop {
            if self.at_end() {
                return Ok(false);
            }
            if self.download.is_none() {
                let response = self.request_range()?;
                self.start_download(response);
            }
            match self.next_piece() {
                Ok(Some(Ok(chunk))) if chunk.is_empty() => {}
                Ok(Some(Ok(chunk))) => {
                    self.check_size(chunk.len())?;
                    self.chunk = chunk;
                    self.offset = 0;
                    return Ok(true);
                }
                Ok(Some(Err(why))) => self.recover(SourceError::Interrupted(why))?,
                Ok(None) if self.meta.content_length.is_none() => return Ok(false),
                Ok(None) => {
                    let short = "the body ended before its Content-Length".to_owned();
                    self.recover(SourceError::Interrupted(short))?;
                }
                Err(idle @ SourceError::Timeout(_)) => self.recover(idle)?,
                Err(err) => return Err(err),
            }
        }
    }

    /// A body can only outgrow the limit when the origin sends more than it declared;
    /// bodies without a length (live streams) are not limited here.
    fn check_size(&self, chunk_len: usize) -> Result<(), SourceError> {
        let limit_bytes = self.fetcher.limits().max_source_bytes;
        let end = self.pos.saturating_add(chunk_len as u64);
        if self.meta.content_length.is_some() && end > limit_bytes {
            return Err(SourceError::TooLarge { limit_bytes });
        }
        Ok(())
    }

    /// Waits for the next piece of the body, up to the read idle timeout.
    fn next_piece(&mut self) -> Result<Option<Piece>, SourceError> {
        let idle = self.fetcher.limits().read_idle_timeout;
        let Some(download) = self.download.as_mut() else {
            return Ok(None);
        };
        let cancel = &self.cancel;
        self.handle.block_on(async {
            tokio::select! {
                biased;
                () = cancel.cancelled() => Err(SourceError::Cancelled),
                piece = tokio::time::timeout(idle, download.next()) => piece.map_err(|_| {
                    SourceError::Timeout(format!("no data from the source for {idle:?}"))
                }),
            }
        })
    }

    /// Continues after the body broke off at `pos` (`cause`: the connection dropped,
    /// `Interrupted`, or went silent, `Timeout`), at most `max_resumes` times.
    fn recover(&mut self, cause: SourceError) -> Result<(), SourceError> {
        self.download = None;
        let max_resumes = self.fetcher.limits().max_resumes;
        if self.resumes >= max_resumes {
            let gave_up = format!("gave up after {max_resumes} resumes");
            return Err(explained(&cause, &gave_up));
        }
        self.resumes += 1;
        let response = match self.recovery() {
            Ok(Recovery::Resume) => self.resume(&cause),
            Ok(Recovery::Reconnect) => self.reconnect(&cause),
            Err(impossible) => return Err(explained(&cause, impossible)),
        };
        let response = response.map_err(|err| resume_failed(&cause, err))?;
        self.fetcher.counters().resumes.inc();
        self.start_download(response);
        Ok(())
    }

    /// How a broken body can go on, or why it cannot (restarting a source that is not
    /// live from byte 0 would play its start again in the middle of the output).
    fn recovery(&self) -> Result<Recovery, &'static str> {
        match (self.meta.content_length, self.ranges) {
            (None, _) if self.live => Ok(Recovery::Reconnect),
            (None, Some(true)) => Ok(Recovery::Resume),
            (None, _) => Err("a source without a length, Range support or live headers"),
            (Some(_), Some(false)) => Err("the origin refuses Range requests"),
            (Some(_), _) => Ok(Recovery::Resume),
        }
    }

    /// A live stream starts again with a plain GET; what it sent in the gap (the time
    /// the reconnect took) is lost.
    fn reconnect(&self, cause: &SourceError) -> Result<Response, SourceError> {
        let url = &self.meta.final_url;
        tracing::warn!(%url, position = self.pos, "live source broke off ({cause}); reconnecting");
        let dropped_at = Instant::now();
        let response = self.block(self.fetcher.get(url.clone(), None))?;
        let gap_ms = dropped_at.elapsed().as_millis();
        tracing::warn!(%url, gap_ms, "live source reconnected; audio in the gap is lost");
        Ok(response)
    }

    /// The body continues from `pos` with a Range request.
    fn resume(&mut self, cause: &SourceError) -> Result<Response, SourceError> {
        let url = &self.meta.final_url;
        let attempt = self.resumes;
        tracing::warn!(%url, position = self.pos, attempt, "source broke off ({cause}); resuming");
        self.request_range()
    }

    /// Requests the body from `pos` on; only a 206 continuing the same body is taken.
    fn request_range(&mut self) -> Result<Response, SourceError> {
        let range = RangeRequest {
            start: self.pos,
            validator: self.validator.as_ref(),
        };
        let url = self.meta.final_url.clone();
        let response = self.block(self.fetcher.get(url, Some(&range)))?;
        check_partial(&response, self.pos, self.meta.content_length)?;
        self.ranges = Some(true);
        Ok(response)
    }

    fn start_download(&mut self, response: Response) {
        let bytes = self.fetcher.counters().bytes.clone();
        let download = Download::start(&self.handle, response, bytes, self.cancel.clone());
        self.download = Some(download);
    }

    /// Runs a request on the runtime, bounded by the start timeout and `cancel`.
    fn block<T>(
        &self,
        work: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        self.handle
            .block_on(self.fetcher.bounded(&self.cancel, work))
    }

    fn can_range(&self) -> bool {
        self.ranges == Some(true) && self.meta.content_length.is_some()
    }

    /// Moves to `target`: within the current chunk, by discarding a short hop, or by
    /// a Range request on the next read.
    fn seek_to(&mut self, target: u64) -> Result<(), SourceError> {
        let chunk_start = self.pos - self.offset as u64;
        let chunk_end = chunk_start + self.chunk.len() as u64;
        if (chunk_start..=chunk_end).contains(&target) {
            self.offset = (target - chunk_start) as usize;
            self.pos = target;
            return Ok(());
        }
        let short_hop = target > self.pos && target - self.pos <= SHORT_HOP_BYTES;
        if short_hop && self.download.is_some() {
            return self.discard(target - self.pos);
        }
        if !self.can_range() {
            return Err(SourceError::NotSeekable);
        }
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.download = None;
        self.chunk = Bytes::new();
        self.offset = 0;
        self.pos = target;
        Ok(())
    }

    /// Reads and drops `count` bytes (fewer if the body ends first).
    fn discard(&mut self, mut count: u64) -> Result<(), SourceError> {
        while count > 0 {
            if self.offset == self.chunk.len() && !self.fill()? {
                return Ok(());
            }
            let available = (self.chunk.len() - self.offset) as u64;
            let step = available.min(count);
            self.offset += step as usize;
            self.pos += step;
            count -= step;
        }
        Ok(())
    }

    fn seek_target(&self, from: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match from {
            SeekFrom::Start(target) => return Ok(target),
            SeekFrom::Current(delta) => (self.pos, delta),
            SeekFrom::End(delta) => match self.meta.content_length {
                Some(length) => (length, delta),
                None => return Err(SourceError::NotSeekable.into_io()),
            },
        };
        base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the source",
            )
        })
    }
}

/// How a body that broke off goes on.
enum Recovery {
    /// A Range request from where it stopped (`If-Range` validated).
    Resume,
    /// A live stream: a new GET, losing what was sent in the gap.
    Reconnect,
}

/// A failed resume ends the stream like its `cause` (or as `Cancelled`).
fn resume_failed(cause: &SourceError, err: SourceError) -> SourceError {
    match err {
        SourceError::Cancelled => err,
        SourceError::Interrupted(detail) => explained(cause, &detail),
        err => explained(cause, &format!("resuming failed: {err}")),
    }
}

/// `cause` with `detail` added: an idle timeout stays a `Timeout`, a drop is
/// `Interrupted`.
fn explained(cause: &SourceError, detail: &str) -> SourceError {
    match cause {
        SourceError::Timeout(why) => SourceError::Timeout(format!("{why}; {detail}")),
        SourceError::Interrupted(why) => SourceError::Interrupted(format!("{why}; {detail}")),
        other => SourceError::Interrupted(format!("{other}; {detail}")),
    }
}

impl Read for RemoteSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.offset == self.chunk.len() && !self.fill().map_err(SourceError::into_io)? {
            return Ok(0);
        }
        let available = &self.chunk[self.offset..];
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        self.offset += count;
        self.pos += count as u64;
        Ok(count)
    }
}

impl Seek for RemoteSource {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        let target = self.seek_target(from)?;
        self.seek_to(target).map_err(SourceError::into_io)?;
        Ok(self.pos)
    }
}

impl MediaSource for RemoteSource {
    /// True when the length is known and the origin accepts Range requests.
    fn is_seekable(&self) -> bool {
        self.can_range()
    }

    /// The `Content-Length` of the source.
    fn byte_len(&self) -> Option<u64> {
        self.meta.content_length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_sources_can_move_to_a_decoder_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RemoteSource>();
        send_sync::<Fetcher>();
    }
}
