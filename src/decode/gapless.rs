//! Gapless trimming for MP4/M4A, whose edit list symphonia reads but does not apply:
//! the AAC encoder delay (priming) and the padding after the last real frame.

use std::io::{Read, SeekFrom};

use symphonia::core::io::MediaSource;

/// Largest `moov` box we are willing to read to find the edit list.
const MAX_MOOV_BYTES: u64 = 16 * 1024 * 1024;
/// How many top-level boxes we walk before giving up on finding `moov`.
const MAX_TOP_LEVEL_BOXES: usize = 64;

/// What an MP4 edit list says about the first audio track, in media timescale units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EditList {
    /// Encoder priming to drop at the start.
    pub priming: u64,
    /// Length to play after the priming (the real length), when the list states it.
    pub playable: Option<u64>,
    /// Units per second of `priming` and `playable` (the track's `mdhd` timescale).
    pub media_timescale: u64,
}

impl EditList {
    /// Priming and playable length converted to frames at `rate_hz`.
    pub(super) fn in_frames(&self, rate_hz: u32) -> (u64, Option<u64>) {
        let convert = |units: u64| {
            let frames = u128::from(units) * u128::from(rate_hz) / u128::from(self.media_timescale);
            u64::try_from(frames).unwrap_or(u64::MAX)
        };
        (convert(self.priming), self.playable.map(convert))
    }
}

/// Frames to drop at the start and the most frames to let through, over the whole stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Trim {
    skip_remaining: u64,
    frames_left: Option<u64>,
}

impl Trim {
    /// Drops the first `skip` frames, then lets at most `limit` frames through.
    pub(super) fn new(skip: u64, limit: Option<u64>) -> Self {
        Self {
            skip_remaining: skip,
            frames_left: limit,
        }
    }

    /// The rest of this whole-stream trim for decoding that resumes at playable frame
    /// `frame` (negative: that many frames before the first playable one, in the priming).
    pub(super) fn resumed_at(&self, frame: i64) -> Self {
        let (skip, done) = match u64::try_from(frame) {
            Ok(done) => (0, done),
            Err(_) => (frame.unsigned_abs(), 0),
        };
        Self::new(skip, self.frames_left.map(|left| left.saturating_sub(done)))
    }

    /// True once the stated length has been delivered: nothing more will pass.
    pub(super) fn is_exhausted(&self) -> bool {
        self.frames_left == Some(0)
    }

    /// Narrows the range of decoded frames of one packet to what playback keeps.
    pub(super) fn apply(&mut self, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let len = range.len() as u64;
        let skip = self.skip_remaining.min(len);
        self.skip_remaining -= skip;
        let mut keep = len - skip;
        if let Some(left) = self.frames_left.as_mut() {
            keep = keep.min(*left);
            *left -= keep;
        }
        let start = range.start + skip as usize;
        start..start + keep as usize
    }
}

/// Reads the edit list of the first sound track of an MP4 file, then rewinds the source.
/// Returns `None` for anything that is not a seekable MP4 with a usable edit list.
pub(super) fn read_mp4_edit_list(source: &mut dyn MediaSource) -> Option<EditList> {
    if !source.is_seekable() {
        return None;
    }
    let moov = find_top_level_box(source, b"moov");
    source.seek(SeekFrom::Start(0)).ok()?;
    parse_moov(&moov?)
}

/// Walks top-level boxes and returns the payload of the first one of type `wanted`.
fn find_top_level_box(source: &mut dyn MediaSource, wanted: &[u8; 4]) -> Option<Vec<u8>> {
    let mut header = [0u8; 8];
    source.read_exact(&mut header).ok()?;
    if &header[4..8] != b"ftyp" {
        return None;
    }
    let mut offset = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        source.seek(SeekFrom::Start(offset)).ok()?;
        source.read_exact(&mut header).ok()?;
        let (size, header_len) = box_size(source, &header)?;
        if &header[4..8] == wanted {
            let payload_len = size.checked_sub(header_len)?;
            if payload_len > MAX_MOOV_BYTES {
                return None;
            }
            let mut payload = Vec::new();
            source.take(payload_len).read_to_end(&mut payload).ok()?;
            return (payload.len() as u64 == payload_len).then_some(payload);
        }
        offset = offset.checked_add(size)?;
    }
    None
}

/// Total box size and header length, reading the 64-bit size when present.
fn box_size(source: &mut dyn MediaSource, header: &[u8; 8]) -> Option<(u64, u64)> {
    let size = u64::from(u32::from_be_bytes(header[..4].try_into().ok()?));
    match size {
        1 => {
            let mut large = [0u8; 8];
            source.read_exact(&mut large).ok()?;
            Some((u64::from_be_bytes(large), 16))
        }
        0 => None,
        size if size < 8 => None,
        size => Some((size, 8)),
    }
}

/// Iterates the child boxes of a container payload as (type, payload).
fn children(payload: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        let size = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
        if size < 8 || size > rest.len() {
            return None;
        }
        let (current, tail) = rest.split_at(size);
        rest = tail;
        Some((&current[4..8], &current[8..]))
    })
}

fn child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(payload).find(|(t, _)| *t == kind).map(|(_, p)| p)
}

fn parse_moov(moov: &[u8]) -> Option<EditList> {
    let movie_timescale = timescale(child(moov, b"mvhd")?)?;
    let trak = children(moov)
        .filter(|(t, _)| *t == b"trak")
        .map(|(_, p)| p)
        .find(|trak| is_sound_track(trak))?;
    let media_timescale = timescale(child(child(trak, b"mdia")?, b"mdhd")?)?;
    let (segment_duration, media_time) = first_edit(child(child(trak, b"edts")?, b"elst")?)?;
    let playable = (segment_duration > 0)
        .then(|| {
            segment_duration
                .checked_mul(media_timescale)
                .map(|d| d / movie_timescale)
        })
        .flatten();
    Some(EditList {
        priming: media_time,
        playable,
        media_timescale,
    })
}

fn is_sound_track(trak: &[u8]) -> bool {
    child(trak, b"mdia")
        .and_then(|mdia| child(mdia, b"hdlr"))
        .and_then(|hdlr| hdlr.get(8..12))
        .is_some_and(|handler| handler == b"soun")
}

/// The timescale field of an `mvhd` or `mdhd` payload (version 0 or 1).
fn timescale(payload: &[u8]) -> Option<u64> {
    let at = if *payload.first()? == 1 { 20 } else { 12 };
    let value = u64::from(u32::from_be_bytes(
        payload.get(at..at + 4)?.try_into().ok()?,
    ));
    (value > 0).then_some(value)
}

/// The first non-empty edit: (segment duration in movie units, media start time).
fn first_edit(elst: &[u8]) -> Option<(u64, u64)> {
    let version = *elst.first()?;
    let count = u32::from_be_bytes(elst.get(4..8)?.try_into().ok()?) as usize;
    let entry_len = if version == 1 { 20 } else { 12 };
    (0..count.min(16)).find_map(|i| {
        let entry = elst.get(8 + i * entry_len..8 + (i + 1) * entry_len)?;
        let (duration, time) = if version == 1 {
            let duration = u64::from_be_bytes(entry[..8].try_into().ok()?);
            (duration, i64::from_be_bytes(entry[8..16].try_into().ok()?))
        } else {
            let duration = u64::from(u32::from_be_bytes(entry[..4].try_into().ok()?));
            (
                duration,
                i64::from(i32::from_be_bytes(entry[4..8].try_into().ok()?)),
            )
        };
        u64::try_from(time).ok().map(|time| (duration, time))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    fn versioned_timescale(timescale: u32) -> Vec<u8> {
        let mut payload = vec![0u8; 12];
        payload.extend(timescale.to_be_bytes());
        payload.extend([0u8; 8]);
        payload
    }

    fn sample_moov(priming: i32, duration: u32) -> Vec<u8> {
        let mut elst = vec![0, 0, 0, 0, 0, 0, 0, 2];
        elst.extend(1000u32.to_be_bytes());
        elst.extend((-1i32).to_be_bytes());
        elst.extend([0, 1, 0, 0]);
        elst.extend(duration.to_be_bytes());
        elst.extend(priming.to_be_bytes());
        elst.extend([0, 1, 0, 0]);
        let mut hdlr = vec![0u8; 8];
        hdlr.extend(b"soun");
        let mdia = [
            mp4_box(b"hdlr", &hdlr),
            mp4_box(b"mdhd", &versioned_timescale(44_100)),
        ]
        .concat();
        let trak = [
            mp4_box(b"edts", &mp4_box(b"elst", &elst)),
            mp4_box(b"mdia", &mdia),
        ]
        .concat();
        [
            mp4_box(b"mvhd", &versioned_timescale(1000)),
            mp4_box(b"trak", &trak),
        ]
        .concat()
    }

    #[test]
    fn reads_priming_and_length_skipping_empty_edits() {
        let edit = parse_moov(&sample_moov(1024, 3000)).unwrap();
        assert_eq!(
            edit,
            EditList {
                priming: 1024,
                playable: Some(132_300),
                media_timescale: 44_100,
            }
        );
        assert_eq!(edit.in_frames(44_100), (1024, Some(132_300)));
        assert_eq!(
            edit.in_frames(22_050),
            (512, Some(66_150)),
            "timescale differs from rate"
        );
    }

    #[test]
    fn finds_moov_after_other_boxes_in_a_file() {
        let file = [
            mp4_box(b"ftyp", b"M4A isom"),
            mp4_box(b"mdat", &[0u8; 100]),
            mp4_box(b"moov", &sample_moov(2112, 1000)),
        ]
        .concat();
        let mut source = std::io::Cursor::new(file);
        let edit = read_mp4_edit_list(&mut source).unwrap();
        assert_eq!(edit.priming, 2112);
        assert_eq!(source.position(), 0, "the source is rewound");
    }

    #[test]
    fn truncated_or_foreign_data_is_ignored() {
        assert!(parse_moov(&sample_moov(1024, 1)[..40]).is_none());
        let mut not_mp4 = std::io::Cursor::new(b"RIFF\0\0\0\0WAVEfmt ".to_vec());
        assert!(read_mp4_edit_list(&mut not_mp4).is_none());
    }

    #[test]
    fn trim_drops_priming_across_packets_and_stops_at_the_end() {
        let mut trim = Trim::new(1500, Some(1000));
        assert_eq!(trim.apply(0..1024), 1024..1024);
        assert_eq!(trim.apply(0..1024), 476..1024);
        assert_eq!(trim.apply(0..1024), 0..452);
        assert!(trim.is_exhausted());
        assert_eq!(trim.apply(0..1024), 0..0);
    }

    #[test]
    fn a_resumed_trim_keeps_the_priming_cut_and_the_end() {
        let plan = Trim::new(1500, Some(1000));
        assert_eq!(plan.resumed_at(-200), Trim::new(200, Some(1000)));
        assert_eq!(plan.resumed_at(600), Trim::new(0, Some(400)));
        assert!(plan.resumed_at(1200).is_exhausted());
        assert_eq!(Trim::default().resumed_at(5), Trim::default());
    }
}
