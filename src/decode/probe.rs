//! Format detection with a bounded search. Leading ID3v2 tags are skipped by their
//! declared length before symphonia sees the stream (this build has no ID3v2 reader: its
//! probe would scan a tag as unknown bytes and give up on one over 1 MB, such as an MP3
//! with a large cover picture). Then, unless the stream opens with the signature of a
//! container that declares its own lengths (a FLAC `PICTURE` block, an MP4 `moov`,
//! Matroska attachments can be large), symphonia reads through a guard that refuses to
//! read past [`MAX_PROBE_BYTES`] until the first audio is decoded: symphonia 0.6 caps its
//! own scans at 1 MB each, but nothing bounds a frame-sync reader that a chance marker in
//! random bytes sent off scanning.

use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::{DecodeError, FormatHint};

/// Most bytes read while searching for a format before the source is declared unsupported.
pub const MAX_PROBE_BYTES: u64 = 1 << 20;

/// Most bytes of leading ID3v2 tags skipped (real cover pictures stay far below).
const MAX_LEADING_TAG_BYTES: u64 = 64 << 20;

/// Bytes a tag header or container signature needs to be recognised.
const SIGNATURE_LEN: usize = 12;

/// State shared between a [`ProbeGuard`] (owned by the demuxer) and its [`ProbeLimit`].
#[derive(Debug, Default)]
struct Flags {
    tripped: AtomicBool,
    disarmed: AtomicBool,
}

/// The decoder's handle on the guard: ends the search and explains a failed one.
#[derive(Debug)]
pub(super) struct ProbeLimit(Arc<Flags>);

impl ProbeLimit {
    /// Skips the leading ID3v2 tags of `source` and wraps the rest in a guard, which
    /// passes everything through once disarmed.
    pub(super) fn guard(
        mut source: Box<dyn MediaSource>,
    ) -> Result<(Self, Box<dyn MediaSource>), DecodeError> {
        let (offset, head) = skip_leading_tags(source.as_mut())?;
        let flags = Arc::new(Flags::default());
        if is_container_signature(&head) {
            flags.disarmed.store(true, Ordering::Relaxed);
        }
        let prefix = if source.is_seekable() {
            source
                .seek(SeekFrom::Start(offset))
                .map_err(DecodeError::Io)?;
            Vec::new()
        } else {
            head
        };
        let guard = ProbeGuard {
            inner: source,
            flags: Arc::clone(&flags),
            offset,
            prefix,
            searched: 0,
        };
        Ok((Self(flags), Box::new(guard)))
    }

    /// Audio was found: the limit no longer applies.
    pub(super) fn disarm(&self) {
        self.0.disarmed.store(true, Ordering::Relaxed);
    }

    /// The error to report for a failed detection: whatever symphonia made of the refused
    /// read, it means no format was found within the limit.
    pub(super) fn explain(&self, error: DecodeError) -> DecodeError {
        if self.0.tripped.load(Ordering::Relaxed) {
            DecodeError::Unsupported(format!(
                "no recognisable audio in the first {MAX_PROBE_BYTES} bytes"
            ))
        } else {
            error
        }
    }
}

/// Reads past the ID3v2 tags at the start of `source`. Returns where the stream proper
/// starts and its first bytes (already consumed from the source).
fn skip_leading_tags(source: &mut dyn MediaSource) -> Result<(u64, Vec<u8>), DecodeError> {
    let mut offset = 0;
    let mut head = Vec::with_capacity(SIGNATURE_LEN);
    loop {
        let missing = (SIGNATURE_LEN - head.len()) as u64;
        source
            .take(missing)
            .read_to_end(&mut head)
            .map_err(DecodeError::Io)?;
        let Some(tag_len) = id3v2_tag_len(&head) else {
            return Ok((offset, head));
        };
        offset += tag_len;
        if offset > MAX_LEADING_TAG_BYTES {
            return Err(DecodeError::Unsupported(format!(
                "more than {MAX_LEADING_TAG_BYTES} bytes of ID3v2 tags"
            )));
        }
        if source.is_seekable() {
            source
                .seek(SeekFrom::Start(offset))
                .map_err(DecodeError::Io)?;
            head.clear();
        } else if let Some(rest) = tag_len.checked_sub(head.len() as u64) {
            head.clear();
            let skipped = io::copy(&mut source.take(rest), &mut io::sink());
            if skipped.map_err(DecodeError::Io)? < rest {
                return Ok((offset, head));
            }
        } else {
            head.drain(..tag_len as usize);
        }
    }
}

/// The stream after its leading tags, counting the bytes read while armed and refusing to
/// read past [`MAX_PROBE_BYTES`].
struct ProbeGuard {
    inner: Box<dyn MediaSource>,
    flags: Arc<Flags>,
    /// Length of the skipped tags: position 0 of this stream is `offset` in `inner`.
    offset: u64,
    /// Bytes already read from an unseekable `inner`, still to deliver.
    prefix: Vec<u8>,
    /// Bytes delivered while armed.
    searched: u64,
}

impl ProbeGuard {
    /// Reads without any limit, serving the prefix first.
    fn read_through(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.prefix.is_empty() {
            return self.inner.read(buf);
        }
        let len = buf.len().min(self.prefix.len());
        buf[..len].copy_from_slice(&self.prefix[..len]);
        self.prefix.drain(..len);
        Ok(len)
    }
}

impl Read for ProbeGuard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.flags.disarmed.load(Ordering::Relaxed) {
            return self.read_through(buf);
        }
        let allowed = MAX_PROBE_BYTES.saturating_sub(self.searched);
        if allowed == 0 && !buf.is_empty() {
            self.flags.tripped.store(true, Ordering::Relaxed);
            return Err(io::Error::other("probe limit reached"));
        }
        let len = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let read = self.read_through(&mut buf[..len])?;
        self.searched += read as u64;
        Ok(read)
    }
}

impl Seek for ProbeGuard {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(at) => SeekFrom::Start(at.saturating_add(self.offset)),
            relative => relative,
        };
        let at = self.inner.seek(pos)?;
        self.prefix.clear();
        at.checked_sub(self.offset)
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "seek into the skipped tags"))
    }
}

impl MediaSource for ProbeGuard {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()?.checked_sub(self.offset)
    }
}

/// Total length of the ID3v2 tag whose header starts `bytes`, when it is a valid header.
fn id3v2_tag_len(bytes: &[u8]) -> Option<u64> {
    let header = bytes.get(..10)?;
    let (version, revision, flags) = (header[3], header[4], header[5]);
    let undefined_flags = match version {
        2 => 0x3F,
        3 => 0x1F,
        4 => 0x0F,
        _ => return None,
    };
    let size = &header[6..10];
    if &header[..3] != b"ID3"
        || revision == 0xFF
        || flags & undefined_flags != 0
        || size.iter().any(|b| b & 0x80 != 0)
    {
        return None;
    }
    let body = size.iter().fold(0u64, |acc, b| (acc << 7) | u64::from(*b));
    let footer = if version == 4 && flags & 0x10 != 0 {
        10
    } else {
        0
    };
    Some(10 + body + footer)
}

/// True for the start of a container whose structure declares its own lengths.
fn is_container_signature(bytes: &[u8]) -> bool {
    const AT_START: [&[u8]; 8] = [
        b"fLaC",
        b"OggS",
        b"RIFF",
        b"RF64",
        b"FORM",
        b"caff",
        &[0x1A, 0x45, 0xDF, 0xA3],
        b"wvpk",
    ];
    AT_START.iter().any(|magic| bytes.starts_with(magic))
        || matches!(bytes.get(4..8), Some(b"ftyp" | b"moov"))
}

/// Runs symphonia's probe over the source with bounded buffering.
pub(super) fn probe(
    source: Box<dyn MediaSource>,
    hint: &FormatHint,
) -> Result<Box<dyn FormatReader>, DecodeError> {
    let stream = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    let mut symphonia_hint = Hint::new();
    if let Some(extension) = &hint.extension {
        symphonia_hint.with_extension(extension);
    }
    if let Some(mime) = &hint.mime_type {
        symphonia_hint.mime_type(mime);
    }
    symphonia::default::get_probe()
        .probe(
            &symphonia_hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|err| match err {
            SymphoniaError::IoError(io) if io.kind() != ErrorKind::UnexpectedEof => {
                DecodeError::Io(io)
            }
            SymphoniaError::IoError(_) => {
                DecodeError::Unsupported("no recognisable audio data".into())
            }
            other => DecodeError::Unsupported(other.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use symphonia::core::io::ReadOnlySource;

    fn guarded(bytes: Vec<u8>, seekable: bool) -> (ProbeLimit, Box<dyn MediaSource>) {
        let source: Box<dyn MediaSource> = if seekable {
            Box::new(Cursor::new(bytes))
        } else {
            Box::new(ReadOnlySource::new(Cursor::new(bytes)))
        };
        ProbeLimit::guard(source).unwrap()
    }

    fn id3v2_tag(body_len: u64) -> Vec<u8> {
        let mut tag = b"ID3\x03\x00\x00".to_vec();
        tag.extend((0..4).rev().map(|i| ((body_len >> (7 * i)) & 0x7F) as u8));
        tag.resize(10 + body_len as usize, 0xAA);
        tag
    }

    #[test]
    fn reads_stop_at_the_limit_in_unstructured_data() {
        for seekable in [true, false] {
            let (limit, mut source) = guarded(vec![0x55; 3 << 20], seekable);
            let mut sink = Vec::new();
            assert!(source.read_to_end(&mut sink).is_err());
            assert_eq!(sink.len() as u64, MAX_PROBE_BYTES);
            let explained = limit.explain(DecodeError::Empty);
            assert!(
                matches!(explained, DecodeError::Unsupported(_)),
                "{explained:?}"
            );
        }
    }

    #[test]
    fn leading_id3v2_tags_are_skipped_and_not_counted() {
        for seekable in [true, false] {
            let stream: Vec<u8> = (0..MAX_PROBE_BYTES / 2).map(|i| i as u8).collect();
            let tags = [
                id3v2_tag(3 << 20),
                id3v2_tag(0),
                id3v2_tag(1),
                id3v2_tag(100),
            ];
            let bytes = [tags.concat(), stream.clone()].concat();
            let (limit, mut source) = guarded(bytes, seekable);
            let mut sink = Vec::new();
            source.read_to_end(&mut sink).unwrap();
            assert_eq!(sink, stream, "seekable {seekable}");
            assert!(matches!(
                limit.explain(DecodeError::Empty),
                DecodeError::Empty
            ));
        }
    }

    #[test]
    fn positions_of_a_seekable_stream_start_after_the_tags() {
        let bytes = [id3v2_tag(1000), b"0123456789abcdef".to_vec()].concat();
        let (_, mut source) = guarded(bytes, true);
        assert_eq!(source.byte_len(), Some(16));
        assert_eq!(source.seek(SeekFrom::Start(10)).unwrap(), 10);
        assert_eq!(source.seek(SeekFrom::End(-2)).unwrap(), 14);
        let mut rest = String::new();
        source.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "ef");
    }

    #[test]
    fn a_container_signature_lifts_the_limit() {
        let mut bytes = b"fLaC".to_vec();
        bytes.resize(3 << 20, 0x55);
        let (_, mut source) = guarded(bytes.clone(), false);
        let mut sink = Vec::new();
        source.read_to_end(&mut sink).unwrap();
        assert_eq!(sink, bytes);
    }

    #[test]
    fn id3v2_headers_are_validated() {
        assert_eq!(
            id3v2_tag_len(b"ID3\x04\x00\x10\x00\x00\x01\x00xx"),
            Some(10 + 128 + 10)
        );
        assert_eq!(id3v2_tag_len(b"ID3\x03\x00\x00\x00\x00\x80\x00xx"), None);
        assert_eq!(id3v2_tag_len(b"ID3\x05\x00\x00\x00\x00\x01\x00xx"), None);
        assert_eq!(id3v2_tag_len(b"<!DOCTYPE html"), None);
    }
}
