//! Non-default options: channel count, sample rate, bitrate, volume, and
//! writing to stdout.

use super::*;
use common::signal::{band_level_dbfs, longest_run_near_peak, middle};

/// Allowed bitrate overshoot over the nominal value, container included; for
/// AAC, which is CBR, also the allowed undershoot.
const BITRATE_TOLERANCE: f64 = 0.10;
/// The third harmonic of a limited sine must stay this far below the fundamental.
const LIMITER_MAX_THIRD_HARMONIC_DB: f64 = -30.0;
/// A limited sine may have at most this many consecutive samples at its peak
/// (a clipped one has a flat top of dozens).
const LIMITER_MAX_SAMPLES_AT_PEAK: usize = 3;
/// "At the peak": within this fraction (0.1 %) of it.
const PEAK_TOLERANCE: f32 = 0.001;

/// A case for `file` in `format` with the options `set` chooses.
fn case(file: &str, format: Format, set: impl FnOnce(&mut Case)) -> Case {
    let mut case = Case::new(file, format);
    set(&mut case);
    case
}

#[test]
fn mono_opus() {
    run_case(case("mp3_cbr_128k.mp3", Format::Opus, |c| {
        c.channels = Some(1)
    }));
}

#[test]
fn mono_pcm() {
    run_case(case("mp3_cbr_128k.mp3", Format::Pcm, |c| {
        c.channels = Some(1)
    }));
}

#[test]
fn mono_aac() {
    run_case(case("mp3_cbr_128k.mp3", Format::Aac, |c| {
        c.channels = Some(1)
    }));
}

#[test]
fn surround_to_mono_pcm() {
    run_case(case("surround_51.flac", Format::Pcm, |c| {
        c.channels = Some(1)
    }));
}

#[test]
fn pcm_at_22050_hz() {
    run_case(case("vorbis.ogg", Format::Pcm, |c| {
        c.sample_rate = Some(22050)
    }));
}

#[test]
fn pcm_at_96000_hz_upsampled() {
    run_case(case("wav_s16.wav", Format::Pcm, |c| {
        c.sample_rate = Some(96000)
    }));
}

#[test]
fn pcm_at_96000_hz_native() {
    run_case(case("hires_96k_24.flac", Format::Pcm, |c| {
        c.sample_rate = Some(96000)
    }));
}

#[test]
fn aac_at_44100_hz() {
    run_case(case("aac_lc.m4a", Format::Aac, |c| {
        c.sample_rate = Some(44100)
    }));
}

/// Bitrate from the file size and the decoded length (priming and padding
/// included, as they are in the file): at most the nominal rate plus
/// [`BITRATE_TOLERANCE`]; for AAC (CBR) also at least the nominal rate minus it.
fn check_bitrate(case: &Case, out: &Produced, report: &mut Report) {
    let nominal = f64::from(case.bitrate_kbps.unwrap());
    let kbps = out.bytes as f64 * 8.0 / out.decoded.duration_secs() / 1000.0;
    let max = nominal * (1.0 + BITRATE_TOLERANCE);
    let min = match case.format {
        Format::Aac => nominal * (1.0 - BITRATE_TOLERANCE),
        _ => 0.0,
    };
    let measured = format!("{kbps:.1} kbit/s ({} bytes)", out.bytes);
    report.expect(
        "bitrate",
        (min..=max).contains(&kbps),
        measured,
        format!("{min:.1}..={max:.1} kbit/s"),
    );
}

/// Runs the generic checks plus the bitrate check.
fn run_bitrate_case(case: Case) {
    let (out, mut report) = check_case(&case);
    check_bitrate(&case, &out, &mut report);
    report.finish();
}

#[test]
fn opus_at_64_kbps() {
    run_bitrate_case(case("mp3_cbr_128k.mp3", Format::Opus, |c| {
        c.bitrate_kbps = Some(64)
    }));
}

#[test]
fn opus_source_at_64_kbps_is_reencoded() {
    run_bitrate_case(case("opus.webm", Format::Opus, |c| {
        c.bitrate_kbps = Some(64)
    }));
}

#[test]
fn aac_at_64_kbps() {
    run_bitrate_case(case("mp3_cbr_128k.mp3", Format::Aac, |c| {
        c.bitrate_kbps = Some(64)
    }));
}

#[test]
fn aac_at_128_kbps() {
    run_bitrate_case(case("mp3_cbr_128k.mp3", Format::Aac, |c| {
        c.bitrate_kbps = Some(128)
    }));
}

#[test]
fn half_volume_pcm() {
    run_case(case("wav_s16.wav", Format::Pcm, |c| c.volume = Some(0.5)));
}

#[test]
fn half_volume_opus() {
    run_case(case("flac_s16.flac", Format::Opus, |c| {
        c.volume = Some(0.5)
    }));
}

/// Tells limiting from clipping: a limited sine is a smaller sine, so its
/// third harmonic is low and its crests are single samples; a clipped sine
/// has a strong third harmonic and flat tops at the ceiling.
fn check_limited_not_clipped(case: &Case, out: &Produced, report: &mut Report) {
    let rate = out.decoded.sample_rate;
    let tone = case.fixture.tone_hz;
    for (c, plane) in out.decoded.planes.iter().enumerate() {
        let steady = middle(plane, rate);
        let fundamental = band_level_dbfs(steady, rate, tone);
        let third = band_level_dbfs(steady, rate, 3.0 * tone) - fundamental;
        report.expect(
            &format!("ch{c} third harmonic ({} Hz) vs fundamental", 3.0 * tone),
            third <= LIMITER_MAX_THIRD_HARMONIC_DB,
            format!("{third:.1} dB"),
            format!("<= {LIMITER_MAX_THIRD_HARMONIC_DB} dB"),
        );
        let run = longest_run_near_peak(plane, PEAK_TOLERANCE);
        report.expect(
            &format!("ch{c} consecutive samples within 0.1 % of the peak"),
            run <= LIMITER_MAX_SAMPLES_AT_PEAK,
            run,
            format!("<= {LIMITER_MAX_SAMPLES_AT_PEAK}"),
        );
    }
}

#[test]
fn double_volume_on_full_scale_is_limited() {
    let case = case("full_scale_48k.wav", Format::Pcm, |c| c.volume = Some(2.0));
    assert!(matches!(case.level(), Level::Limited));
    let (out, mut report) = check_case(&case);
    check_limited_not_clipped(&case, &out, &mut report);
    report.finish();
}

#[test]
fn double_volume_on_a_quiet_tone_is_plain_gain() {
    let case = case("mp2.mp2", Format::Pcm, |c| c.volume = Some(2.0));
    assert!(matches!(case.level(), Level::Near { .. }));
    run_case(case);
}

#[test]
fn pcm_to_stdout_matches_pcm_to_file() {
    let case = Case::new("wav_s16.wav", Format::Pcm);
    let out = transcode(&case);
    let input = fixture_path(case.fixture.file);
    let run = run_with_timeout(cli().args(case.args(&input, Path::new("-"))), RUN_LIMIT);
    assert!(
        run.status.success(),
        "{}: CLI failed: {}",
        case.label(),
        run.stderr.trim()
    );
    let file = std::fs::read(&out.path).unwrap();
    assert!(
        run.stdout == file,
        "{}: stdout has {} bytes, the file {} bytes, or their contents differ",
        case.label(),
        run.stdout.len(),
        file.len()
    );
}
