//! The table of committed audio fixtures (made by `tests/fixtures/make_fixtures.sh`)
//! and what a correct decoder must find in each.

/// RMS level of a sine of peak 0.5: 20·log10(0.5/√2).
pub const SINE_HALF_DBFS: f64 = -9.030_899_869_919_436;
/// RMS level of a sine of peak 0.25: 20·log10(0.25/√2).
pub const SINE_QUARTER_DBFS: f64 = -15.051_499_783_199_061;
/// RMS level of a full-scale sine: 20·log10(1/√2).
pub const SINE_FULL_DBFS: f64 = -3.010_299_956_639_812;
/// Gain of the documented 5.1 -> stereo downmix for a tone present in-phase in
/// FL (or FR) and FC: 20·log10((1 + 0.7071) / 2.4142).
pub const SURROUND_FRONT_GAIN_DB: f64 = -3.010_299_956_639_812;

/// One good fixture: a sine tone of known frequency, level and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixture {
    /// File name in `tests/fixtures`.
    pub file: &'static str,
    /// Source format as the service reports it (`X-Source-Format`).
    pub format: &'static str,
    /// Sample rate of the source stream in Hz.
    pub sample_rate: u32,
    /// Channels in the source stream.
    pub channels: usize,
    /// Exact length of the encoded tone in seconds.
    pub duration_secs: f64,
    /// How much longer than `duration_secs` a correct decoder may return
    /// because the container cannot signal the encoder's priming and padding
    /// (ADTS, MP2, Vorbis in Matroska); 0 where it can.
    pub unsignalled_padding_secs: f64,
    /// How far from `duration_secs` a correct decoder may end because the
    /// container states the trimmed length only to this precision (Matroska's
    /// 1 ms timestamps, rounded at both ends of the stream); 0 where the length
    /// is exact to the frame.
    pub length_precision_secs: f64,
    /// Frequency of the tone in Hz.
    pub tone_hz: f64,
    /// Peak amplitude of the tone in each channel that carries it.
    pub amplitude: f64,
    /// Level change the encoder itself made to the tone, as measured with
    /// ffmpeg's decoder (LAME in CBR mode lowers a pure tone by about 0.45 dB);
    /// already included in `level_dbfs`.
    pub codec_gain_db: f64,
    /// RMS level (dBFS) of each channel of a stereo or mono downmix.
    pub level_dbfs: f64,
}

/// Level change of a pure tone encoded by LAME in CBR mode (128 kbit/s stereo
/// and 64 kbit/s mono alike), measured on the decoded fixtures.
pub const LAME_CBR_TONE_GAIN_DB: f64 = -0.445;

/// A stereo fixture with the same tone in both channels.
const fn stereo(
    file: &'static str,
    format: &'static str,
    sample_rate: u32,
    duration_secs: f64,
    tone_hz: f64,
) -> Fixture {
    Fixture {
        file,
        format,
        sample_rate,
        channels: 2,
        duration_secs,
        unsignalled_padding_secs: 0.0,
        length_precision_secs: 0.0,
        tone_hz,
        amplitude: 0.5,
        codec_gain_db: 0.0,
        level_dbfs: SINE_HALF_DBFS,
    }
}

/// Every good fixture.
pub const FIXTURES: &[Fixture] = &[
    Fixture {
        codec_gain_db: LAME_CBR_TONE_GAIN_DB,
        level_dbfs: SINE_HALF_DBFS + LAME_CBR_TONE_GAIN_DB,
        ..stereo("mp3_cbr_128k.mp3", "mp3", 44100, 2.5, 440.0)
    },
    stereo("mp3_vbr_q4.mp3", "mp3", 44100, 2.2, 1000.0),
    stereo("aac_lc.m4a", "aac", 44100, 2.3, 440.0),
    Fixture {
        unsignalled_padding_secs: 2048.0 / 44100.0,
        ..stereo("aac_adts.aac", "aac", 44100, 2.1, 440.0)
    },
    stereo("vorbis.ogg", "vorbis", 44100, 2.4, 1000.0),
    Fixture {
        unsignalled_padding_secs: 1024.0 / 44100.0,
        ..stereo("vorbis.mka", "vorbis", 44100, 1.8, 440.0)
    },
    stereo("opus.opus", "opus", 48000, 2.0, 440.0),
    Fixture {
        length_precision_secs: 0.002,
        ..stereo("opus.webm", "opus", 48000, 2.6, 440.0)
    },
    Fixture {
        unsignalled_padding_secs: 1152.0 / 44100.0,
        amplitude: 0.25,
        level_dbfs: SINE_QUARTER_DBFS,
        ..stereo("mp2.mp2", "mp2", 44100, 2.0, 440.0)
    },
    Fixture {
        channels: 1,
        codec_gain_db: LAME_CBR_TONE_GAIN_DB,
        level_dbfs: SINE_HALF_DBFS + LAME_CBR_TONE_GAIN_DB,
        ..stereo("mono_22k.mp3", "mp3", 22050, 1.9, 1000.0)
    },
    stereo("flac_s16.flac", "flac", 44100, 1.5, 440.0),
    stereo("wav_s16.wav", "wav", 44100, 1.0, 440.0),
    stereo("wav_f32.wav", "wav", 44100, 0.75, 440.0),
    stereo("aiff_s16.aiff", "aiff", 44100, 1.2, 440.0),
    stereo("alac.m4a", "alac", 44100, 1.6, 440.0),
    stereo("alac.caf", "alac", 44100, 1.4, 440.0),
    stereo("hires_96k_24.flac", "flac", 96000, 1.0, 440.0),
    Fixture {
        amplitude: 1.0,
        level_dbfs: SINE_FULL_DBFS,
        ..stereo("full_scale_48k.wav", "wav", 48000, 1.0, 440.0)
    },
    Fixture {
        channels: 6,
        level_dbfs: SINE_HALF_DBFS + SURROUND_FRONT_GAIN_DB,
        ..stereo("surround_51.flac", "flac", 44100, 2.0, 440.0)
    },
];

impl Fixture {
    /// True when the container signals the encoder's delay and padding (or the
    /// codec has none), so a correct decoder returns exactly `duration_secs`
    /// of audio, starting on the first sample of the tone.
    pub fn is_gapless(&self) -> bool {
        self.unsignalled_padding_secs == 0.0
    }

    /// The exact length of the tone at `rate`: `round(duration_secs × rate)`.
    pub fn frames_at(&self, rate: u32) -> usize {
        (self.duration_secs * f64::from(rate)).round() as usize
    }
}

/// A 5.1 fixture with a different tone in every channel (see
/// `make_fixtures.sh`), to measure each speaker's share of a downmix.
pub const SURROUND_TONES_FILE: &str = "surround_51_tones.flac";
/// Frequency of the tone in each channel of [`SURROUND_TONES_FILE`], in file
/// order: ffmpeg's "5.1" layout FL, FR, FC, LFE, BL, BR.
pub const SURROUND_TONES_HZ: [f64; 6] = [300.0, 500.0, 700.0, 60.0, 900.0, 1100.0];
/// Peak amplitude of every tone of [`SURROUND_TONES_FILE`].
pub const SURROUND_TONE_PEAK: f64 = 0.3;
/// Sample rate of [`SURROUND_TONES_FILE`].
pub const SURROUND_TONES_RATE: u32 = 44100;

/// A deliberately broken input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corrupt {
    /// File name in `tests/fixtures`.
    pub file: &'static str,
    /// For a truncated file, the good fixture it is the first half of.
    pub cut_from: Option<&'static str>,
}

/// Every broken input.
pub const CORRUPT: &[Corrupt] = &[
    Corrupt {
        file: "empty.bin",
        cut_from: None,
    },
    Corrupt {
        file: "random.bin",
        cut_from: None,
    },
    Corrupt {
        file: "html.html",
        cut_from: None,
    },
    Corrupt {
        file: "truncated.mp3",
        cut_from: Some("mp3_cbr_128k.mp3"),
    },
    Corrupt {
        file: "truncated.flac",
        cut_from: Some("flac_s16.flac"),
    },
];

/// The good fixture named `file`; panics if there is none.
pub fn fixture(file: &str) -> &'static Fixture {
    FIXTURES
        .iter()
        .find(|f| f.file == file)
        .unwrap_or_else(|| panic!("no fixture named {file}"))
}
