//! `GainRider`: decides the normalisation gain from a BS.1770 loudness measurement (the
//! `ebur128` crate) of audio that runs ahead of the output, and smooths it into a
//! per-frame gain ramp. Knows nothing of the delay line, nor of how the limiter works.

use std::ops::Range;

use ebur128::EbuR128;

use super::meters::{self, LimiterLoss};
use crate::{Block, ConfigError};

/// How often the gain is decided: every 100 ms, the step of BS.1770 gating blocks.
pub(super) const HOP_SECS: f64 = 0.1;

/// How much loudness history the estimate covers: 30 s, of which the look-ahead is the
/// newest part and the rest has been played. Gated (absolute -70 LUFS, relative -10 LU)
/// integrated loudness over this span barely moves on steady material, yet follows a
/// stream (a radio station, a playlist) from one programme to the next.
const HISTORY_MS: u32 = 30_000;

/// Smoothing time constant while the gain falls (louder material ahead).
const ATTACK_SECS: f64 = 0.75;

/// Smoothing time constant while the gain rises (quieter material ahead).
const RELEASE_SECS: f64 = 3.0;

/// Lowest gain applied, dB.
pub const MIN_GAIN_DB: f64 = -30.0;

/// Highest gain applied, dB.
pub const MAX_GAIN_DB: f64 = 30.0;

/// The gain computer: a loudness meter fed with the input as it arrives, and a gain that
/// moves once per hop towards `target - loudness + limiter loss`.
///
/// Every `hop_frames` input frames it reads the gated integrated loudness of the last
/// `HISTORY_MS` and sets the wanted gain to the difference from the target, plus the
/// loudness the limiter has been taking away from what was played (so that peaky
/// material such as speech still reaches the target; at most `MAX_MAKEUP_DB`), clamped
/// to `MIN_GAIN_DB..=MAX_GAIN_DB`. While nothing has been measured above the -70 LUFS
/// absolute gate (silence, near-silence) the wanted gain stays where it was (0 dB at the
/// start): quiet passages are never boosted for being quiet. Before any output has been
/// played the gain jumps to the wanted value; afterwards it follows with a one-pole
/// smoother in dB (`ATTACK_SECS` down, `RELEASE_SECS` up). Within a hop the linear gain
/// ramps from the previous decision to the latest, so it never steps.
#[derive(Debug)]
pub(super) struct GainRider {
    /// Boxed: the meter is large, and stages are moved around by value.
    meter: Box<EbuR128>,
    loss: LimiterLoss,
    channels: usize,
    sample_rate_hz: u32,
    target_lufs: f64,
    hop_frames: usize,
    /// Frames of the current hop already seen.
    hop_pos: usize,
    attack: f64,
    release: f64,
    /// The latest loudness above the absolute gate, LUFS.
    loudness: Option<f64>,
    gain_db: f64,
    /// Linear gains at the start and at the end of the current hop.
    from: f64,
    to: f64,
}

impl GainRider {
    /// A rider aiming at `target_lufs` for `channels` channels at `sample_rate_hz`
    /// (both already validated).
    pub(super) fn try_new(
        target_lufs: f64,
        channels: usize,
        sample_rate_hz: u32,
    ) -> Result<Self, ConfigError> {
        let hop_frames = ((HOP_SECS * f64::from(sample_rate_hz)).round() as usize).max(1);
        let per_hop = |secs: f64| 1.0 - (-HOP_SECS / secs).exp();
        Ok(Self {
            meter: meters::meter(channels, sample_rate_hz, HISTORY_MS)?,
            loss: LimiterLoss::try_new(channels, sample_rate_hz, HISTORY_MS)?,
            channels,
            sample_rate_hz,
            target_lufs,
            hop_frames,
            hop_pos: 0,
            attack: per_hop(ATTACK_SECS),
            release: per_hop(RELEASE_SECS),
            loudness: None,
            gain_db: 0.0,
            from: 1.0,
            to: 1.0,
        })
    }

    /// Frames per hop.
    pub(super) fn hop_frames(&self) -> usize {
        self.hop_frames
    }

    /// Frames left until the next decision.
    pub(super) fn frames_to_decision(&self) -> usize {
        self.hop_frames - self.hop_pos
    }

    /// Changes the target; the smoothing makes the ramp.
    pub(super) fn set_target(&mut self, target_lufs: f64) {
        self.target_lufs = target_lufs;
    }

    /// Feeds frames `frames` of the input `planes` to the meter.
    pub(super) fn measure(&mut self, planes: &[Vec<f32>], frames: Range<usize>) {
        meters::add(&mut self.meter, planes, frames);
    }

    /// Feeds what entered the limiter and what came out of it.
    pub(super) fn measure_limiter(&mut self, before: &Block, after: &Block) {
        self.loss.add(before, after);
    }

    /// Fills `gains` with the gain of each of the next `gains.len()` frames of the hop,
    /// which must not run past its end.
    pub(super) fn ramp(&self, gains: &mut [f32]) {
        let step = (self.to - self.from) / self.hop_frames as f64;
        for (i, gain) in gains.iter_mut().enumerate() {
            *gain = (self.from + step * (self.hop_pos + i + 1) as f64) as f32;
        }
    }

    /// Moves `frames` frames on (not past the end of the hop), and decides the next
    /// gain at the end of the hop: from a new measurement when `measuring`, smoothed
    /// when `playing` (output has started), else jumping to the wanted value.
    pub(super) fn advance(&mut self, frames: usize, measuring: bool, playing: bool) {
        self.hop_pos += frames;
        if self.hop_pos < self.hop_frames {
            return;
        }
        self.hop_pos = 0;
        if measuring {
            let loudness = self.meter.loudness_global().unwrap_or(f64::NEG_INFINITY);
            if loudness.is_finite() {
                self.loudness = Some(loudness);
            }
        }
        if let Some(loudness) = self.loudness {
            let wanted = self.target_lufs - loudness + self.loss.loss_db();
            let wanted = wanted.clamp(MIN_GAIN_DB, MAX_GAIN_DB);
            self.gain_db = if playing {
                let rate = if wanted < self.gain_db {
                    self.attack
                } else {
                    self.release
                };
                self.gain_db + (wanted - self.gain_db) * rate
            } else {
                wanted
            };
        }
        self.from = self.to;
        self.to = 10f64.powf(self.gain_db / 20.0);
    }

    /// The gain decided last, in dB.
    pub(super) fn gain_db(&self) -> f64 {
        self.gain_db
    }

    /// Forgets all history, as if just built.
    pub(super) fn reset(&mut self) {
        // Fresh meters rather than `EbuR128::reset` (see `meters::meter`).
        let (channels, rate) = (self.channels, self.sample_rate_hz);
        match meters::meter(channels, rate, HISTORY_MS) {
            Ok(meter) => self.meter = meter,
            Err(_) => self.meter.reset(),
        }
        if let Ok(loss) = LimiterLoss::try_new(channels, rate, HISTORY_MS) {
            self.loss = loss;
        }
        self.hop_pos = 0;
        self.loudness = None;
        self.gain_db = 0.0;
        self.from = 1.0;
        self.to = 1.0;
    }
}
