//! `--speed`, `--pitch` and `--rate` on a steady 440 Hz tone: the output tone
//! has frequency `440 x pitch x rate` and lasts `input / (speed x rate)`, each
//! within 1 %, in raw PCM and in Ogg Opus.

use super::*;
use common::signal::ToneStats;

/// Frequency of the input tone.
const TONE_HZ: f64 = 440.0;
/// Length of the input tone.
const TONE_SECS: f64 = 4.0;
/// Peak level of the input tone.
const TONE_PEAK_DBFS: f64 = -6.0;
/// Allowed relative error of the output frequency and duration.
const TOLERANCE: f64 = 0.01;

/// The tempo filters of one run; 1.0 is "not given".
#[derive(Clone, Copy, Debug)]
struct Tempo {
    speed: f64,
    pitch: f64,
    rate: f64,
}

impl Tempo {
    /// The command-line flags for the factors that are not 1.
    fn args(self) -> Vec<String> {
        [
            ("--speed", self.speed),
            ("--pitch", self.pitch),
            ("--rate", self.rate),
        ]
        .into_iter()
        .filter(|(_, value)| *value != 1.0)
        .flat_map(|(flag, value)| [flag.to_owned(), value.to_string()])
        .collect()
    }

    /// Output frequency: pitch and rate both scale it; speed keeps it.
    fn expected_hz(self) -> f64 {
        TONE_HZ * self.pitch * self.rate
    }

    /// Output duration: speed and rate both shorten it; pitch keeps it.
    fn expected_secs(self) -> f64 {
        TONE_SECS / (self.speed * self.rate)
    }
}

/// `Ok` when `measured` is within [`TOLERANCE`] of `expected`, otherwise the
/// failure line for `what`.
fn within(what: &str, measured: f64, expected: f64, unit: &str) -> Result<(), String> {
    let error = measured / expected - 1.0;
    if error.abs() <= TOLERANCE {
        return Ok(());
    }
    Err(format!(
        "{what}: measured {measured:.4} {unit}, expected {expected:.4} {unit} ± {}% (off by {:+.2}%)",
        TOLERANCE * 100.0,
        error * 100.0
    ))
}

/// Transcodes the 440 Hz tone with `tempo` into `format` and checks the
/// output length, and in every channel the tone's frequency and audible length.
fn check_tempo(tempo: Tempo, format: Format) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tone_440.wav");
    sine_wav(&input, TONE_HZ, TONE_PEAK_DBFS, TONE_SECS);
    let args = tempo.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = dir.path().join(format!("out.{}", format.name()));
    let decoded = transcode(&input, &output, format, &args);
    let mut failures = Vec::new();
    let secs = tempo.expected_secs();
    let length = within("output length", decoded.duration_secs(), secs, "s");
    failures.extend(length.err());
    for (c, plane) in decoded.planes.iter().enumerate() {
        let stats = ToneStats::measure(plane, decoded.sample_rate);
        let span = within(&format!("ch{c} tone length"), stats.span_secs, secs, "s");
        failures.extend(span.err());
        let hz = tempo.expected_hz();
        let freq = within(&format!("ch{c} frequency"), stats.frequency_hz, hz, "Hz");
        failures.extend(freq.err());
    }
    assert_no_failures(&label(&input, format, &args), &failures);
}

/// One module per tempo setting, with a test for each output format.
macro_rules! tempo_cases {
    ($($name:ident => ($speed:expr, $pitch:expr, $rate:expr),)*) => {
        $(
            mod $name {
                use super::{Format, Tempo, check_tempo};

                const TEMPO: Tempo = Tempo { speed: $speed, pitch: $pitch, rate: $rate };

                #[test]
                fn pcm() {
                    check_tempo(TEMPO, Format::Pcm);
                }

                #[test]
                fn opus() {
                    check_tempo(TEMPO, Format::Opus);
                }
            }
        )*
    };
}

tempo_cases! {
    speed_1_5_keeps_pitch => (1.5, 1.0, 1.0),
    speed_0_75_keeps_pitch => (0.75, 1.0, 1.0),
    rate_1_25_is_varispeed => (1.0, 1.0, 1.25),
    pitch_2_keeps_tempo => (1.0, 2.0, 1.0),
    speed_pitch_and_rate_combine => (1.25, 0.8, 1.1),
}
