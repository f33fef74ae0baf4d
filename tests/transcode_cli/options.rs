//! Non-default options: channel count, sample rate, bitrate, volume, and
//! writing to stdout.

use super::*;

/// Allowed bitrate overshoot over the nominal value, container included.
const BITRATE_TOLERANCE: f64 = 0.10;

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

fn check_bitrate(case: &Case, out: &Produced, report: &mut Report) {
    let nominal = f64::from(case.bitrate_kbps.unwrap());
    let kbps = out.bytes as f64 * 8.0 / out.decoded.duration_secs() / 1000.0;
    let max = nominal * (1.0 + BITRATE_TOLERANCE);
    let measured = format!("{kbps:.1} kbit/s ({} bytes)", out.bytes);
    report.expect(
        "bitrate",
        kbps <= max,
        measured,
        format!("<= {max:.1} kbit/s"),
    );
}

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
fn half_volume_pcm() {
    run_case(case("wav_s16.wav", Format::Pcm, |c| c.volume = Some(0.5)));
}

#[test]
fn half_volume_opus() {
    run_case(case("flac_s16.flac", Format::Opus, |c| {
        c.volume = Some(0.5)
    }));
}

#[test]
fn double_volume_on_full_scale_is_limited() {
    let case = case("full_scale_48k.wav", Format::Pcm, |c| c.volume = Some(2.0));
    assert!(matches!(case.level(), Level::Limited));
    run_case(case);
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
