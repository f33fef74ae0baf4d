//! Decoder tests on whole inputs: garbage, and real files behind large tags.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A source that counts the bytes read through it.
struct Counting {
    inner: Box<dyn MediaSource>,
    read: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

impl Seek for Counting {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl MediaSource for Counting {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}

/// `bytes` as a seekable source of known length, or behind a reader that cannot seek.
fn source(bytes: Vec<u8>, seekable: bool) -> Box<dyn MediaSource> {
    if seekable {
        Box::new(Cursor::new(bytes))
    } else {
        Box::new(ReadOnlySource::new(Cursor::new(bytes)))
    }
}

/// `len` bytes from a xorshift generator.
fn random_bytes(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(path).unwrap()
}

/// Every decoded frame, plane by plane.
fn decode_planes(source: Box<dyn MediaSource>) -> Vec<Vec<f32>> {
    let mut decoder = Decoder::try_new(source, &FormatHint::default()).unwrap();
    let mut planes = vec![Vec::new(); decoder.info().layout.len()];
    let mut block = Block::new(0);
    while decoder.next_block(&mut block).unwrap() {
        for (all, new) in planes.iter_mut().zip(block.planes()) {
            all.extend_from_slice(new);
        }
    }
    planes
}

#[test]
fn garbage_is_unsupported_and_empty_input_too() {
    assert!(matches!(
        decode_all(Vec::new()),
        Err(DecodeError::Unsupported(_))
    ));
    let noise: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(
        decode_all(noise),
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn random_bytes_are_refused_after_at_most_one_mib_of_probing() {
    // One read buffer of symphonia's stream, plus the few blocks its search for trailing
    // tags reads at the end of a source of known length.
    const SLACK: u64 = 64 * 1024;
    for (seed, seekable) in [(1, true), (2, false), (0x9E37_79B9_7F4A_7C15, true)] {
        let read = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: source(random_bytes(5 << 20, seed), seekable),
            read: Arc::clone(&read),
        };
        let outcome = Decoder::try_new(Box::new(counting), &FormatHint::default());
        assert!(
            matches!(outcome, Err(DecodeError::Unsupported(_))),
            "seed {seed}: {:?}",
            outcome.err()
        );
        let read = read.load(Ordering::Relaxed);
        assert!(
            read <= MAX_PROBE_BYTES + SLACK,
            "seed {seed}, seekable {seekable}: {read} bytes read"
        );
    }
}

/// An ID3v2.3 tag holding one APIC frame (a front cover) of `picture_len` random bytes.
fn id3v2_with_picture(picture_len: usize) -> Vec<u8> {
    let mut body = b"\0image/jpeg\0\x03\0".to_vec();
    body.extend(random_bytes(picture_len, 7));
    let mut frame = b"APIC".to_vec();
    frame.extend((body.len() as u32).to_be_bytes());
    frame.extend([0, 0]);
    frame.extend(body);
    let size = frame.len() as u32;
    let mut tag = b"ID3\x03\x00\x00".to_vec();
    tag.extend([21, 14, 7, 0].map(|shift| ((size >> shift) & 0x7F) as u8));
    tag.extend(frame);
    tag
}

/// `flac` with a PICTURE metadata block of `picture_len` random bytes after STREAMINFO.
fn flac_with_picture(flac: &[u8], picture_len: usize) -> Vec<u8> {
    const STREAMINFO_END: usize = 4 + 4 + 34;
    assert_eq!(&flac[..4], b"fLaC");
    let mut out = flac[..STREAMINFO_END].to_vec();
    let last_flag = out[4] & 0x80;
    out[4] &= 0x7F;
    let mut body = [3u32, 10].map(u32::to_be_bytes).concat();
    body.extend(b"image/jpeg");
    body.extend([0u8; 20]);
    body.extend((picture_len as u32).to_be_bytes());
    body.extend(random_bytes(picture_len, 11));
    out.push(last_flag | 6);
    out.extend(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend(body);
    out.extend(&flac[STREAMINFO_END..]);
    out
}

#[test]
fn large_cover_pictures_before_the_audio_are_not_mistaken_for_garbage() {
    let mp3 = fixture("mp3_cbr_128k.mp3");
    let flac = fixture("flac_s16.flac");
    let mp3_with_cover = [id3v2_with_picture(3 << 20), mp3.clone()].concat();
    let flac_with_cover = flac_with_picture(&flac, 3 << 20);
    for seekable in [true, false] {
        for (plain, covered) in [(&mp3, &mp3_with_cover), (&flac, &flac_with_cover)] {
            let expected = decode_planes(source(plain.clone(), seekable));
            assert!(expected[0].len() > 40_000);
            let decoded = decode_planes(source(covered.clone(), seekable));
            assert!(decoded == expected, "seekable {seekable}: audio differs");
        }
    }
}
