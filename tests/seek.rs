//! Starting part-way into a source: a seekable source is sought, an unseekable one is
//! decoded from the start with the audio before the start dropped, and both give the same
//! output, to the frame, for every fixture format; a seek into a long file reads only a
//! part of it.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::fixture_path;
use common::fixtures::FIXTURES;
use rust_transcoder::decode::{Decoder, FormatHint, MediaSource, ReadOnlySource};
use rust_transcoder::encode::{OutputFormat, OutputSpec};
use rust_transcoder::pipeline::{Transcode, TranscodeSpec};

/// A source that counts the bytes read through it.
struct Counting<S> {
    inner: S,
    read: Arc<AtomicU64>,
}

impl<S: Read> Read for Counting<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

impl<S: Seek> Seek for Counting<S> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<S: MediaSource> MediaSource for Counting<S> {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}

/// What one transcode produced.
struct Run {
    /// Interleaved s16 samples.
    samples: Vec<i16>,
    start_offset_secs: f64,
    bytes_read: u64,
}

/// PCM at the source's own rate, so that nothing but the start differs between runs.
fn pcm_spec(rate_hz: u32, channels: usize, start_secs: f64) -> TranscodeSpec {
    TranscodeSpec {
        output: OutputSpec {
            format: OutputFormat::Pcm,
            sample_rate_hz: rate_hz,
            channels: channels.min(2),
            bitrate_kbps: 128,
        },
        start_secs,
        ..TranscodeSpec::default()
    }
}

/// Transcodes `path` as the file itself (seekable) or as its bytes behind a reader that
/// cannot seek; `None` when the decoder cannot open it that way.
fn run(path: &Path, spec: &TranscodeSpec, seekable: bool) -> Option<Run> {
    let read = Arc::new(AtomicU64::new(0));
    let source: Box<dyn MediaSource> = if seekable {
        Box::new(Counting {
            inner: File::open(path).unwrap(),
            read: Arc::clone(&read),
        })
    } else {
        Box::new(Counting {
            inner: ReadOnlySource::new(Cursor::new(std::fs::read(path).unwrap())),
            read: Arc::clone(&read),
        })
    };
    let decoder = Decoder::try_new(source, &FormatHint::default()).ok()?;
    let transcode = Transcode::try_new(decoder, spec).unwrap();
    let start_offset_secs = transcode.start_offset_secs();
    let mut bytes = Vec::new();
    let sink = |chunk: bytes::Bytes| {
        bytes.extend_from_slice(&chunk);
        Ok(())
    };
    transcode.run(sink, |_| {}).unwrap();
    Some(Run {
        samples: bytes
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
            .collect(),
        start_offset_secs,
        bytes_read: read.load(Ordering::Relaxed),
    })
}

/// Largest difference allowed between a sought and an uninterrupted decode of a codec,
/// once the codec is reset at the seek point and primed with its pre-roll (see
/// `src/decode/seek.rs`). Measured on the fixtures:
/// - PCM, FLAC, ALAC: every packet decodes on its own; bit-identical.
/// - MP3, MP2, Vorbis: 200 ms of pre-roll restore the bit reservoir, the synthesis
///   filter bank and the overlap-add window; bit-identical (already from 80 ms on).
/// - AAC: bit-identical, except where the encoder used perceptual noise substitution:
///   that noise comes from a generator whose state depends on everything decoded since
///   the decoder was made, so it is different noise of the same level (2.4e-4 on the
///   noise-coded padding at the end of `aac_adts.aac`, which nothing trims).
/// - Opus: libopus's prediction state converges geometrically after a reset; with the
///   500 ms pre-roll nothing differs at 16 bits (1 LSB at 400 ms, 2 at 300 ms, 8e-4 at
///   200 ms, 5e-2 at RFC 7845's 80 ms minimum). The bound leaves 3 LSB of headroom.
fn tolerance(format: &str) -> f32 {
    match format {
        "aac" => 1e-3,
        "opus" => 1e-4,
        _ => 0.0,
    }
}

fn max_difference(a: &[i16], b: &[i16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f32::from(*x) - f32::from(*y)).abs() / 32768.0)
        .fold(0.0, f32::max)
}

/// The output of decoding and discarding up to `start_secs`: from an unseekable reader
/// when the format can be read that way, otherwise (an MP4 whose `moov` follows the
/// audio) the whole file's output without its first frames.
fn decode_and_discard(path: &Path, spec: &TranscodeSpec, rate_hz: u32) -> Vec<i16> {
    if let Some(unseekable) = run(path, spec, false) {
        return unseekable.samples;
    }
    let whole_spec = TranscodeSpec {
        start_secs: 0.0,
        ..spec.clone()
    };
    let whole = run(path, &whole_spec, true).unwrap().samples;
    let start_frame = (spec.start_secs * f64::from(rate_hz)).round() as usize;
    whole[start_frame * spec.output.channels..].to_vec()
}

#[test]
fn seeking_gives_the_output_of_decoding_from_the_start_for_every_format() {
    let mut failures = Vec::new();
    for fixture in FIXTURES {
        let path = fixture_path(fixture.file);
        let end = fixture.duration_secs;
        for start_secs in [0.5, 1.2345, end - 0.05].into_iter().filter(|s| *s < end) {
            let spec = pcm_spec(fixture.sample_rate, fixture.channels, start_secs);
            let sought = run(&path, &spec, true).unwrap();
            let reference = decode_and_discard(&path, &spec, fixture.sample_rate);
            let channels = spec.output.channels;
            let difference = max_difference(&sought.samples, &reference);
            let start_frame = (start_secs * f64::from(fixture.sample_rate)).round();
            let offset = start_frame / f64::from(fixture.sample_rate);
            if sought.samples.len() != reference.len()
                || difference > tolerance(fixture.format)
                || sought.start_offset_secs != offset
            {
                failures.push(format!(
                    "{} from {start_secs} s: {} frames vs {}, max difference {difference:e}, \
                     start offset {} s (expected {offset} s)",
                    fixture.file,
                    sought.samples.len() / channels,
                    reference.len() / channels,
                    sought.start_offset_secs,
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n  {}", failures.join("\n  "));
}

#[test]
fn a_start_at_the_very_end_gives_an_empty_stream() {
    for file in [
        "flac_s16.flac",
        "mp3_cbr_128k.mp3",
        "aac_lc.m4a",
        "opus.opus",
    ] {
        let fixture = common::fixtures::fixture(file);
        let spec = pcm_spec(fixture.sample_rate, 2, fixture.duration_secs);
        let sought = run(&fixture_path(file), &spec, true).unwrap();
        assert_eq!(sought.samples.len(), 0, "{file}");
    }
}

/// `secs` of a chord in `file`, encoded by ffmpeg with `codec_args`.
fn long_file(dir: &Path, file: &str, secs: u32, codec_args: &[&str]) -> PathBuf {
    let path = dir.join(file);
    let chord = "0.2*sin(2*PI*220*t)+0.2*sin(2*PI*331*t)+0.1*sin(2*PI*1763*t)";
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("aevalsrc={chord}:s=44100:d={secs}"))
        .args(["-ac", "2"])
        .args(codec_args)
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make {file}");
    path
}

#[test]
fn a_seek_into_a_long_file_reads_only_the_part_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    // Ogg is bisected down to two maximum page sizes (128 KiB) and scanned from there: a
    // seek costs some 350 KiB whatever the length, so Ogg needs a file well beyond that.
    let formats: [(&str, u32, &[&str]); 7] = [
        ("long.flac", 30, &["-c:a", "flac"]),
        ("long.wav", 30, &["-c:a", "pcm_s16le"]),
        ("long.aiff", 30, &["-c:a", "pcm_s16be"]),
        ("long.m4a", 30, &["-c:a", "aac", "-b:a", "128k"]),
        ("long.ogg", 240, &["-c:a", "libvorbis", "-q:a", "4"]),
        ("long.opus", 240, &["-c:a", "libopus", "-b:a", "96k"]),
        ("long.caf", 30, &["-c:a", "alac"]),
    ];
    for (file, secs, codec_args) in formats {
        let path = long_file(dir.path(), file, secs, codec_args);
        let size = std::fs::metadata(&path).unwrap().len();
        let probe =
            Decoder::try_new(Box::new(File::open(&path).unwrap()), &FormatHint::default()).unwrap();
        let info = probe.info().clone();
        let spec = pcm_spec(info.sample_rate_hz, 2, f64::from(secs) * 0.8);
        let sought = run(&path, &spec, true).unwrap();
        let reference = decode_and_discard(&path, &spec, info.sample_rate_hz);
        assert_eq!(sought.samples.len(), reference.len(), "{file}");
        assert!(
            max_difference(&sought.samples, &reference) <= tolerance(&info.format_name),
            "{file}"
        );
        assert!(
            sought.bytes_read < size * 2 / 5,
            "{file}: a start at 80 % read {} of {size} bytes",
            sought.bytes_read
        );
    }
}

/// MP3, MP2 and ADTS have no index: symphonia finds the frame holding the target by
/// reading every frame header before it (the bytes are read, not decoded). The decoder
/// then resumes within the pre-roll of the target instead of at the start.
#[test]
fn an_elementary_stream_resumes_near_the_target_without_decoding_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    for (file, codec_args) in [
        ("long.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
        ("long.mp2", &["-c:a", "mp2", "-b:a", "192k"]),
        ("long.aac", &["-c:a", "aac", "-f", "adts"]),
    ] {
        let path = long_file(dir.path(), file, 30, codec_args);
        let mut decoder =
            Decoder::try_new(Box::new(File::open(&path).unwrap()), &FormatHint::default()).unwrap();
        let target = 24 * 44_100;
        let resumed_at = decoder.seek(target).unwrap();
        let earliest = target - 44_100 / 5 - 4 * 1152;
        assert!(
            (earliest..=target).contains(&resumed_at),
            "{file}: resumed at frame {resumed_at} for {target}"
        );
        let spec = pcm_spec(44_100, 2, 24.0);
        let sought = run(&path, &spec, true).unwrap();
        let reference = decode_and_discard(&path, &spec, 44_100);
        assert_eq!(sought.samples.len(), reference.len(), "{file}");
        assert!(
            max_difference(&sought.samples, &reference) <= 1e-3,
            "{file}"
        );
    }
}
