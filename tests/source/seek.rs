//! Seeking: Range requests when the origin supports them, `NotSeekable` when it does
//! not, and an MP4 whose `moov` box follows the audio decoding over Range.

use std::io::{Read, Seek, SeekFrom};
use std::process::Command;

use dsp::Block;
use rust_transcoder::decode::{Decoder, FormatHint, MediaSource};
use rust_transcoder::source::{RemoteSource, SourceError, source_error};

use super::common::origin::{Behaviour, Origin};
use super::{Client, noise};

const SIZE: usize = 300_000;

fn read_at(source: &mut RemoteSource, from: SeekFrom, len: usize) -> Vec<u8> {
    let at = source.seek(from).unwrap();
    let mut bytes = vec![0; len];
    source.read_exact(&mut bytes).unwrap();
    assert_eq!(source.stream_position().unwrap(), at + len as u64);
    bytes
}

#[test]
fn seeking_to_the_end_and_back_is_byte_exact_over_range() {
    let origin = Origin::start();
    let data = noise(SIZE);
    origin.add_blob("noise.bin", data.clone());
    let client = Client::loopback();
    let mut source = client
        .open(&origin.url("noise.bin", Behaviour::Ranges))
        .unwrap();
    assert_eq!(source.byte_len(), Some(SIZE as u64));
    assert!(read_at(&mut source, SeekFrom::Start(0), 1000) == data[..1000]);
    assert!(read_at(&mut source, SeekFrom::End(-100), 100) == data[SIZE - 100..]);
    assert_eq!(source.read(&mut [0; 8]).unwrap(), 0);
    assert!(read_at(&mut source, SeekFrom::Start(10), 5000) == data[10..5010]);
    assert!(read_at(&mut source, SeekFrom::Current(100_000), 10) == data[105_010..105_020]);
    assert!(read_at(&mut source, SeekFrom::Current(-3), 3) == data[105_017..105_020]);
    assert!(read_at(&mut source, SeekFrom::Current(1000), 10) == data[106_020..106_030]);
    let ranges: Vec<_> = origin
        .requests()
        .into_iter()
        .filter_map(|r| r.range)
        .collect();
    assert!(
        ranges.contains(&format!("bytes={}-", SIZE - 100)),
        "{ranges:?}"
    );
    assert!(ranges.contains(&"bytes=10-".to_owned()), "{ranges:?}");
    assert!(
        origin
            .requests()
            .iter()
            .all(|r| r.range.is_none() || r.if_range.is_some())
    );
}

#[test]
fn seeks_the_origin_cannot_serve_are_not_seekable() {
    let origin = Origin::start();
    let data = noise(SIZE);
    origin.add_blob("noise.bin", data.clone());
    let client = Client::loopback();
    let mut source = client
        .open(&origin.url("noise.bin", Behaviour::Plain))
        .unwrap();
    assert!(!source.is_seekable());
    for from in [SeekFrom::Start(200_000), SeekFrom::End(-10)] {
        let err = source.seek(from).unwrap_err();
        assert!(
            matches!(source_error(&err), Some(SourceError::NotSeekable)),
            "{err:?}"
        );
    }
    // A short hop forward is served by reading on; the stream stays usable.
    assert!(read_at(&mut source, SeekFrom::Start(1000), 100) == data[1000..1100]);
    let mut rest = Vec::new();
    source.read_to_end(&mut rest).unwrap();
    assert!(rest == data[1100..]);
    let back = source.seek(SeekFrom::Start(0)).unwrap_err();
    assert!(matches!(
        source_error(&back),
        Some(SourceError::NotSeekable)
    ));
}

/// An AAC-in-MP4 file of `seconds`, with `moov` after `mdat` (ffmpeg's default).
fn m4a_with_moov_at_end(seconds: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.m4a");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=44100:duration={seconds}"
        ))
        .args(["-c:a", "aac", "-b:a", "128k", "-movflags", "-faststart"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        top_level_boxes(&bytes).last().map(|b| &b[..]),
        Some(&b"moov"[..])
    );
    bytes
}

fn top_level_boxes(bytes: &[u8]) -> Vec<[u8; 4]> {
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        boxes.push(bytes[at + 4..at + 8].try_into().unwrap());
        if size < 8 {
            break;
        }
        at += size;
    }
    boxes
}

fn decoded_frames(mut decoder: Decoder) -> usize {
    let mut block = Block::new(0);
    let mut frames = 0;
    while decoder.next_block(&mut block).unwrap() {
        frames += block.frames();
    }
    frames
}

#[test]
fn an_m4a_with_moov_at_the_end_decodes_over_range() {
    let bytes = m4a_with_moov_at_end(20);
    let origin = Origin::start();
    origin.add_blob("tone.m4a", bytes.clone());
    let client = Client::loopback();
    let source = client
        .open(&origin.url("tone.m4a", Behaviour::Ranges))
        .unwrap();
    let hint = FormatHint {
        extension: source.meta().extension(),
        mime_type: source.meta().content_type.clone(),
    };
    let remote = decoded_frames(Decoder::try_new(Box::new(source), &hint).unwrap());
    let local = Decoder::try_new(Box::new(std::io::Cursor::new(bytes)), &hint).unwrap();
    assert_eq!(remote, decoded_frames(local));
    assert!(
        (remote as f64 / 44_100.0 - 20.0).abs() < 0.1,
        "{remote} frames"
    );
    assert!(origin.requests().iter().any(|r| r.range.is_some()));
}
