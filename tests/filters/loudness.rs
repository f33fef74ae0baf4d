//! `--normalize`: a quiet (-30 LUFS) and a loud (-8 LUFS) 60 s music-like
//! file come out at the target loudness within 1 LU, with true peaks at or
//! under -1 dBTP, as measured independently by ffmpeg's `ebur128` filter; so
//! does quiet music with drum hits whose peaks the gain alone would push over
//! full scale.

use super::*;

/// Length of the music-like input.
const MUSIC_SECS: u32 = 60;
/// Default normalisation target.
const DEFAULT_TARGET_LUFS: f64 = -14.0;
/// Allowed distance of the output's integrated loudness from the target.
const TARGET_TOLERANCE_LU: f64 = 1.0;
/// True-peak ceiling of the normalised output.
const TRUE_PEAK_CEILING_DBTP: f64 = -1.0;
/// Allowance for the measurement of the true peak (ebur128's 4x oversampling
/// can differ from the limiter's own estimate).
const TRUE_PEAK_TOLERANCE_DB: f64 = 0.1;
/// How close the scaled input must be to its intended loudness.
const INPUT_TOLERANCE_LU: f64 = 0.3;

/// What ffmpeg's `ebur128` filter reports in its summary.
#[derive(Clone, Copy, Debug)]
struct Loudness {
    /// Integrated loudness in LUFS.
    integrated_lufs: f64,
    /// True peak (4x oversampled) in dBTP.
    true_peak_dbtp: f64,
}

/// Measures a file with `ffmpeg -nostats -i FILE -af ebur128=peak=true -f null -`
/// and parses the summary's `I:` and `Peak:` lines. `input_format` holds the
/// options that describe a raw input (empty for a file with a header).
fn ebur128(path: &Path, input_format: &[&str]) -> Loudness {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-nostats", "-hide_banner"])
        .args(input_format)
        .arg("-i")
        .arg(path);
    cmd.args(["-af", "ebur128=peak=true", "-f", "null", "-"]);
    let run = run_with_timeout(&mut cmd, RUN_LIMIT);
    assert!(
        run.status.success(),
        "ebur128 of {} failed: {}",
        path.display(),
        run.stderr
    );
    let summary = run
        .stderr
        .split("Summary:")
        .nth(1)
        .unwrap_or_else(|| panic!("no ebur128 summary for {}: {}", path.display(), run.stderr));
    let value = |key: &str| {
        let line = summary.lines().map(str::trim).find(|l| l.starts_with(key));
        let number = line.and_then(|l| l[key.len()..].split_whitespace().next());
        number
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {key} in the ebur128 summary: {summary}"))
    };
    Loudness {
        integrated_lufs: value("I:"),
        true_peak_dbtp: value("Peak:"),
    }
}

/// The loudness of raw 48 kHz stereo s16le PCM written by the CLI.
fn ebur128_of_pcm(path: &Path) -> Loudness {
    ebur128(path, &["-f", "s16le", "-ar", "48000", "-ac", "2"])
}

/// Writes the output `[out]` of the ffmpeg filter graph `graph` to `path` as a
/// 32-bit float WAV.
fn render(graph: &str, path: &Path) {
    let out = path.to_str().unwrap();
    ffmpeg(&[
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        "-c:a",
        "pcm_f32le",
        out,
    ]);
}

/// Writes a 60 s music-like stereo signal as a 32-bit float WAV: a chord of
/// five partials that changes every 4 s, with a slow tremolo, plus bursts of
/// high-passed pink noise (a hi-hat) every half second. Its crest factor is
/// that of a loud master, so that at -8 LUFS it still fits under full scale.
fn music_base(path: &Path) {
    let chord = "0.25*sin(2*PI*(220+27.5*lt(mod(t,8),4))*t)+0.2*sin(2*PI*277.18*t+1)\
                 +0.2*sin(2*PI*(1318.5-329.6*lt(mod(t,8),4))*t+2)\
                 +0.15*sin(2*PI*2637*t+0.5)+0.1*sin(2*PI*3520*t+4)";
    let graph = format!(
        "aevalsrc=exprs='({chord})*(0.9+0.1*sin(2*PI*0.5*t))':s={RATE}:d={MUSIC_SECS}[chord];\
         anoisesrc=color=pink:amplitude=0.3:r={RATE}:d={MUSIC_SECS}:seed=7,highpass=f=3000,\
         volume='if(lt(mod(t,0.5),0.1),1,0.1)':eval=frame[hats];\
         [chord][hats]amix=inputs=2:normalize=0,pan=stereo|c0=c0|c1=c0[out]"
    );
    render(&graph, path);
}

/// Writes a 60 s stereo 32-bit float WAV of a quiet two-note pad with a
/// decaying 90 Hz drum hit every 2 s: peaks 21 dB above its loudness, so that
/// normalising it from -30 to -14 LUFS needs the true-peak limiter.
fn drums_base(path: &Path) {
    let signal = "0.05*sin(2*PI*220*t)+0.04*sin(2*PI*277.18*t+1)\
                  +0.95*sin(2*PI*90*t)*exp(-60*mod(t,2))";
    let graph =
        format!("aevalsrc=exprs='{signal}':s={RATE}:d={MUSIC_SECS},pan=stereo|c0=c0|c1=c0[out]");
    render(&graph, path);
}

/// A generated 60 s input: a name for messages and the function that writes it.
#[derive(Clone, Copy)]
struct Source {
    name: &'static str,
    write: fn(&Path),
}

/// Chords, tremolo and hi-hats: [`music_base`].
const MUSIC: Source = Source {
    name: "music",
    write: music_base,
};
/// A pad with drum hits: [`drums_base`].
const DRUMS: Source = Source {
    name: "drums",
    write: drums_base,
};

/// Writes `source` scaled with a plain `volume` gain to `target_lufs` into an
/// s16 WAV in `dir`, checks that ebur128 measures it at that loudness,
/// unclipped, and returns its path and loudness.
fn input_at(dir: &Path, source: Source, target_lufs: f64) -> (std::path::PathBuf, Loudness) {
    let base = dir.join("base.wav");
    (source.write)(&base);
    let gain_db = target_lufs - ebur128(&base, &[]).integrated_lufs;
    let path = dir.join(format!("{}_{target_lufs}_lufs.wav", source.name));
    let volume = format!("volume={gain_db}dB");
    let (from, to) = (base.to_str().unwrap(), path.to_str().unwrap());
    ffmpeg(&["-i", from, "-af", &volume, "-c:a", "pcm_s16le", to]);
    let input = ebur128(&path, &[]);
    assert!(
        (input.integrated_lufs - target_lufs).abs() <= INPUT_TOLERANCE_LU
            && input.true_peak_dbtp < 0.0,
        "test input: measured {:.1} LUFS, true peak {:.1} dBTP; expected {target_lufs} ± {INPUT_TOLERANCE_LU} LUFS, under 0 dBTP",
        input.integrated_lufs,
        input.true_peak_dbtp
    );
    (path, input)
}

/// Normalises `source` scaled to `input_lufs` with `flag` and checks the
/// output's integrated loudness against `target_lufs` and its true peak.
/// Returns the true peak the normalising gain alone would give, in dBTP.
fn check_normalize(source: Source, input_lufs: f64, flag: &str, target_lufs: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (input, before) = input_at(dir.path(), source, input_lufs);
    let output = dir.path().join("out.pcm");
    transcode(&input, &output, Format::Pcm, &[flag]);
    let out = ebur128_of_pcm(&output);
    let unlimited_peak = before.true_peak_dbtp + target_lufs - before.integrated_lufs;
    eprintln!(
        "{} at {input_lufs} LUFS {flag}: {:.1} LUFS, true peak {:.1} dBTP (gain alone: {unlimited_peak:.1} dBTP)",
        source.name, out.integrated_lufs, out.true_peak_dbtp
    );
    let mut failures = Vec::new();
    if (out.integrated_lufs - target_lufs).abs() > TARGET_TOLERANCE_LU {
        failures.push(format!(
            "integrated loudness: measured {:.1} LUFS, expected {target_lufs} ± {TARGET_TOLERANCE_LU} LU",
            out.integrated_lufs
        ));
    }
    let ceiling = TRUE_PEAK_CEILING_DBTP + TRUE_PEAK_TOLERANCE_DB;
    if out.true_peak_dbtp > ceiling {
        failures.push(format!(
            "true peak: measured {:.1} dBTP, expected <= {TRUE_PEAK_CEILING_DBTP} dBTP (+{TRUE_PEAK_TOLERANCE_DB} dB)",
            out.true_peak_dbtp
        ));
    }
    assert_no_failures(&label(&input, Format::Pcm, &[flag]), &failures);
    unlimited_peak
}

#[test]
fn quiet_music_is_normalized_to_minus_14_lufs() {
    check_normalize(MUSIC, -30.0, "--normalize", DEFAULT_TARGET_LUFS);
}

#[test]
fn loud_music_is_normalized_to_minus_14_lufs() {
    check_normalize(MUSIC, -8.0, "--normalize", DEFAULT_TARGET_LUFS);
}

#[test]
fn quiet_music_is_normalized_to_minus_20_lufs() {
    check_normalize(MUSIC, -30.0, "--normalize=-20", -20.0);
}

#[test]
fn loud_music_is_normalized_to_minus_20_lufs() {
    check_normalize(MUSIC, -8.0, "--normalize=-20", -20.0);
}

#[test]
fn quiet_drums_are_normalized_under_the_true_peak_ceiling() {
    let unlimited_peak = check_normalize(DRUMS, -30.0, "--normalize", DEFAULT_TARGET_LUFS);
    assert!(
        unlimited_peak > 0.0,
        "test input: the gain alone peaks at {unlimited_peak:.1} dBTP, expected over 0 dBTP"
    );
}

/// `--normalize` without a value must not take the next option as its target: the
/// flag-only form followed by `--duration` normalises (to -14 LUFS) and cuts exactly.
#[test]
fn normalize_without_a_value_leaves_the_next_option_alone() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tone.wav");
    sine_wav(&input, 440.0, -30.0, 3.0);
    let args = ["--normalize", "--duration", "2"];
    let out = transcode(&input, &dir.path().join("out.pcm"), Format::Pcm, &args);
    assert_eq!(
        out.frames(),
        2 * RATE as usize,
        "{}",
        label(&input, Format::Pcm, &args)
    );
}
