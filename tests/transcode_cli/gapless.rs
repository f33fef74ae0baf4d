//! Gapless decoding, to the frame: for every fixture whose container signals
//! the encoder's delay and padding, PCM output has exactly the source length
//! (at the source rate and resampled to 48 kHz) and starts where ffmpeg's own
//! decode starts; Ogg Opus output decodes to the same length.

use super::*;
use common::decode::decode_file_resampled;
use common::signal::onset_frame;

/// A tone sets in at the first sample reaching this fraction of its peak.
const ONSET_FRACTION: f32 = 0.5;
/// Allowed distance, in frames, between the onset of the tone in our output
/// and in ffmpeg's decode of the fixture at the same rate.
const ONSET_TOLERANCE_FRAMES: usize = 2;
/// Allowed length error, in frames, when the output is resampled.
const RESAMPLED_TOLERANCE_FRAMES: usize = 1;
/// Allowed length error, in frames, of Ogg Opus output as ffmpeg decodes it.
const OPUS_TOLERANCE_FRAMES: usize = 1;

/// Frames a fixture's container may be off by at `rate` (its
/// `length_precision_secs`; 0 for everything but Matroska).
fn precision_frames(f: &Fixture, rate: u32) -> usize {
    (f.length_precision_secs * f64::from(rate)).round() as usize
}

/// Checks that `frames` is `expected` within `tolerance` frames.
fn expect_frames(
    report: &mut Report,
    check: &str,
    frames: usize,
    expected: usize,
    tolerance: usize,
) {
    report.expect(
        check,
        frames.abs_diff(expected) <= tolerance,
        format!("{frames} frames"),
        format!("{expected} ± {tolerance} frames"),
    );
}

/// Compares where the tone sets in, channel by channel, in our output and in
/// ffmpeg's decode of the fixture at the same rate (a mono reference serves
/// every output channel; a 5.1 one is compared channel for channel, since the
/// tone starts at the same frame in every speaker that carries it).
fn check_onset(case: &Case, out: &Decoded, report: &mut Report) {
    let input = fixture_path(case.fixture.file);
    let reference = if out.sample_rate == case.fixture.sample_rate {
        decode_file(&input)
    } else {
        decode_file_resampled(&input, out.sample_rate)
    };
    for (c, plane) in out.planes.iter().enumerate() {
        let ours = onset_frame(plane, ONSET_FRACTION);
        let theirs = onset_frame(
            &reference.planes[c.min(reference.channels - 1)],
            ONSET_FRACTION,
        );
        let ok =
            matches!((ours, theirs), (Some(a), Some(b)) if a.abs_diff(b) <= ONSET_TOLERANCE_FRAMES);
        report.expect(
            &format!("ch{c} onset (first sample >= {ONSET_FRACTION} x peak)"),
            ok,
            format!("frame {ours:?}"),
            format!("ffmpeg's frame {theirs:?} ± {ONSET_TOLERANCE_FRAMES}"),
        );
    }
}

/// PCM output at `rate` (the source's own rate when `None`): exact length,
/// ±1 frame when resampled, and no lag against ffmpeg's decode.
fn pcm_is_exact(file: &str, rate: Option<u32>) {
    let mut case = Case::new(file, Format::Pcm);
    let rate = rate.unwrap_or(case.fixture.sample_rate);
    case.sample_rate = Some(rate);
    let out = transcode(&case);
    let mut report = Report::new(&case);
    let f = case.fixture;
    let resampled = rate != f.sample_rate;
    let tolerance = precision_frames(f, rate)
        + if resampled {
            RESAMPLED_TOLERANCE_FRAMES
        } else {
            0
        };
    let check = if resampled {
        format!("length resampled {} -> {rate} Hz", f.sample_rate)
    } else {
        format!("length at the source rate {rate} Hz")
    };
    expect_frames(
        &mut report,
        &check,
        out.decoded.frames(),
        f.frames_at(rate),
        tolerance,
    );
    check_onset(&case, &out.decoded, &mut report);
    report.finish();
}

/// Ogg Opus output decodes (ffmpeg applies pre-skip and end trimming) to the
/// source length at 48 kHz within one frame.
fn opus_is_exact(file: &str) {
    let case = Case::new(file, Format::Opus);
    let out = transcode(&case);
    let mut report = Report::new(&case);
    let f = case.fixture;
    let tolerance = OPUS_TOLERANCE_FRAMES + precision_frames(f, DEFAULT_RATE);
    let check = "decoded length (ffmpeg, pre-skip and end trim applied)";
    expect_frames(
        &mut report,
        check,
        out.decoded.frames(),
        f.frames_at(DEFAULT_RATE),
        tolerance,
    );
    report.finish();
}

macro_rules! gapless {
    ($($name:ident => $file:literal,)*) => {
        /// Every fixture the gapless tests cover.
        const GAPLESS_FILES: &[&str] = &[$($file),*];
        $(
            mod $name {
                #[test]
                fn pcm_at_source_rate() {
                    super::pcm_is_exact($file, None);
                }
                #[test]
                fn pcm_at_48_khz() {
                    super::pcm_is_exact($file, Some(super::DEFAULT_RATE));
                }
                #[test]
                fn opus() {
                    super::opus_is_exact($file);
                }
            }
        )*
    };
}

gapless! {
    mp3_cbr => "mp3_cbr_128k.mp3",
    mp3_vbr => "mp3_vbr_q4.mp3",
    aac_m4a => "aac_lc.m4a",
    vorbis_ogg => "vorbis.ogg",
    opus_ogg => "opus.opus",
    opus_webm => "opus.webm",
    mono_22k_mp3 => "mono_22k.mp3",
    flac_s16 => "flac_s16.flac",
    wav_s16 => "wav_s16.wav",
    wav_f32 => "wav_f32.wav",
    aiff_s16 => "aiff_s16.aiff",
    alac_m4a => "alac.m4a",
    alac_caf => "alac.caf",
    flac_96k_24 => "hires_96k_24.flac",
    wav_full_scale_48k => "full_scale_48k.wav",
    flac_5_1 => "surround_51.flac",
}

#[test]
fn gapless_tests_cover_every_signalled_fixture() {
    for f in FIXTURES {
        assert_eq!(
            GAPLESS_FILES.contains(&f.file),
            f.is_gapless(),
            "{}: in the gapless list exactly when its container signals delay and padding",
            f.file
        );
    }
}
