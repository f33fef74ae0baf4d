//! One CLI run described as data: the fixture, the output format and the
//! options, with the command line it makes and what its output must be.

use super::{DEFAULT_CHANNELS, DEFAULT_RATE, Fixture, LEVEL_TOLERANCE_DB, fixture};
use std::ffi::OsString;
use std::path::Path;

/// The output format requested with `--format`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Format {
    Opus,
    Pcm,
    Aac,
}

impl Format {
    /// The `--format` value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Pcm => "pcm",
            Self::Aac => "aac",
        }
    }

    /// Output file name with the format's usual extension.
    pub(crate) fn file_name(self) -> &'static str {
        match self {
            Self::Opus => "out.opus",
            Self::Pcm => "out.pcm",
            Self::Aac => "out.aac",
        }
    }
}

/// What the output level must be.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Level {
    /// RMS level of every channel within a tolerance.
    Near { dbfs: f64, tolerance_db: f64 },
    /// Loud input pushed into the limiter: peaks stay under the ceiling.
    Limited,
}

/// One CLI run: a fixture, an output format and the options given (`None`:
/// the CLI default).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Case {
    pub(crate) fixture: &'static Fixture,
    pub(crate) format: Format,
    pub(crate) sample_rate: Option<u32>,
    pub(crate) channels: Option<usize>,
    pub(crate) bitrate_kbps: Option<u32>,
    pub(crate) volume: Option<f64>,
}

impl Case {
    /// A case with every option left at the CLI default.
    pub(crate) fn new(file: &str, format: Format) -> Self {
        Self {
            fixture: fixture(file),
            format,
            sample_rate: None,
            channels: None,
            bitrate_kbps: None,
            volume: None,
        }
    }

    /// The full argument list: `transcode INPUT -o OUTPUT --format F` and the options.
    pub(crate) fn args(&self, input: &Path, output: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["transcode".into(), input.into(), "-o".into()];
        args.extend([output.into(), "--format".into(), self.format.name().into()]);
        args.extend(self.option_args().into_iter().map(OsString::from));
        args
    }

    /// The non-default options as command-line arguments.
    pub(crate) fn option_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(v) = value {
                args.extend([flag.to_owned(), v]);
            }
        };
        push("--sample-rate", self.sample_rate.map(|v| v.to_string()));
        push("--channels", self.channels.map(|v| v.to_string()));
        push("--bitrate", self.bitrate_kbps.map(|v| v.to_string()));
        push("--volume", self.volume.map(|v| v.to_string()));
        args
    }

    /// `FILE -> FORMAT` and the options, to name the case in failure messages.
    pub(crate) fn label(&self) -> String {
        let mut label = format!("{} -> {}", self.fixture.file, self.format.name());
        for arg in self.option_args() {
            label.push(' ');
            label.push_str(&arg);
        }
        label
    }

    /// Sample rate of the output stream (Ogg Opus always runs at 48 kHz).
    pub(crate) fn out_rate(&self) -> u32 {
        match self.format {
            Format::Opus => DEFAULT_RATE,
            _ => self.sample_rate.unwrap_or(DEFAULT_RATE),
        }
    }

    /// Channel count of the output stream.
    pub(crate) fn out_channels(&self) -> usize {
        self.channels.unwrap_or(DEFAULT_CHANNELS)
    }

    /// The level the output must have: the fixture's level plus the volume
    /// gain, or limited when that would go over the ceiling.
    pub(crate) fn level(&self) -> Level {
        let gain_db = 20.0 * self.volume.unwrap_or(1.0).log10();
        let dbfs = self.fixture.level_dbfs + gain_db;
        if gain_db > 0.0 && dbfs + 3.0103 > -1.0 {
            return Level::Limited;
        }
        let tolerance_db = if self.volume.is_some() {
            0.3
        } else {
            LEVEL_TOLERANCE_DB
        };
        Level::Near { dbfs, tolerance_db }
    }
}
