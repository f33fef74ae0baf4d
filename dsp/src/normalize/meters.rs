//! The normaliser's loudness meters, its only `ebur128` user: building and feeding
//! integrated-loudness meters, and `LimiterLoss`, how much loudness the true-peak limiter
//! takes away from what has been played (a meter before and one after it), so that the
//! gain rider can make it up. Knows nothing of how the gain is decided.

use std::ops::Range;

use ebur128::EbuR128;

use crate::{Block, ConfigError, MAX_CHANNELS};

/// Most loudness made up for the limiter, LU: beyond this, material is so peaky that
/// reaching the target would take more limiting than is transparent.
pub(super) const MAX_MAKEUP_DB: f64 = 6.0;

/// Differences this small are measurement noise, not limiting: the two meters see the
/// audio a look-ahead apart, so their gating blocks do not line up exactly.
const NOISE_DB: f64 = 0.05;

/// Gated integrated loudness of the audio entering and leaving the limiter.
#[derive(Debug)]
pub(super) struct LimiterLoss {
    before: Box<EbuR128>,
    after: Box<EbuR128>,
}

impl LimiterLoss {
    /// Meters for `channels` channels at `sample_rate_hz` with `history_ms` of history.
    pub(super) fn try_new(
        channels: usize,
        sample_rate_hz: u32,
        history_ms: u32,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            before: meter(channels, sample_rate_hz, history_ms)?,
            after: meter(channels, sample_rate_hz, history_ms)?,
        })
    }

    /// Adds a run of audio as it entered the limiter, and what the limiter let out
    /// meanwhile (the same audio, a look-ahead later).
    pub(super) fn add(&mut self, before: &Block, after: &Block) {
        add(&mut self.before, before.planes(), 0..before.frames());
        add(&mut self.after, after.planes(), 0..after.frames());
    }

    /// The loudness the limiter took away, LU, less `NOISE_DB`: 0 when it has not acted
    /// (or nothing has been measured yet), at most `MAX_MAKEUP_DB`.
    pub(super) fn loss_db(&self) -> f64 {
        let before = self.before.loudness_global().unwrap_or(f64::NEG_INFINITY);
        let after = self.after.loudness_global().unwrap_or(f64::NEG_INFINITY);
        if before.is_finite() && after.is_finite() {
            (before - after - NOISE_DB).clamp(0.0, MAX_MAKEUP_DB)
        } else {
            0.0
        }
    }
}

/// Feeds frames `frames` of `planes` to `meter` (without allocating).
pub(super) fn add(meter: &mut EbuR128, planes: &[Vec<f32>], frames: Range<usize>) {
    let mut slices: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
    for (slice, plane) in slices.iter_mut().zip(planes) {
        *slice = &plane[frames.clone()];
    }
    let added = meter.add_frames_planar_f32(&slices[..planes.len()]);
    debug_assert!(added.is_ok(), "{added:?}");
}

/// An integrated-loudness meter with `history_ms` of history. A bounded history starts
/// out padded with empty blocks, which `EbuR128::reset` would drop (changing the
/// gating), so a stage resets by building fresh meters.
pub(super) fn meter(
    channels: usize,
    sample_rate_hz: u32,
    history_ms: u32,
) -> Result<Box<EbuR128>, ConfigError> {
    let refused = |_| ConfigError::Channels {
        input: channels,
        output: channels,
    };
    let count = u32::try_from(channels).map_err(|_| refused(ebur128::Error::NoMem))?;
    let mut meter = EbuR128::new(count, sample_rate_hz, ebur128::Mode::I).map_err(refused)?;
    meter.set_max_history(history_ms).map_err(refused)?;
    Ok(Box::new(meter))
}
