//! The waveform-similarity search behind `Tempo`: finds, among candidate positions,
//! the one whose samples best continue a reference. Owns its decimation scratch; knows
//! nothing of frames, windows or speeds.

use std::ops::RangeInclusive;

/// Keeps the normalisation finite when every candidate is silent.
const ENERGY_FLOOR: f64 = 1e-20;

/// How much a candidate at the far end of the range is handicapped, as a fraction of the
/// best possible score: among near-equal matches (the periods of a steady tone) the one
/// nearest the nominal place wins, which keeps content in time.
const CENTRE_BIAS: f64 = 0.01;

/// A two-stage, channel-linked cross-correlation search.
///
/// The similarity of a candidate is the correlation of its first `len` frames with the
/// reference, summed over all channels, divided by the square root of the candidate's
/// energy (normalised cross-correlation: loud candidates are not favoured), less a small
/// handicap growing with the square of its distance from the middle lag. The coarse stage
/// runs on a copy of both signals decimated by `decimation` (sums of that many frames: a
/// box low-pass, then one sample in `decimation`) over every coarse lag; the fine stage
/// runs at full rate over the `decimation` lags either side of the coarse winner, climbs
/// on if the best lies on the edge of that range, and places the peak between frames with
/// a parabola through the unhandicapped scores of the winner and its neighbours. Ties go to
/// the smaller lag, so the result depends on the samples only.
#[derive(Debug, Clone)]
pub(super) struct Search {
    len: usize,
    decimation: usize,
    coarse_reference: Vec<Vec<f32>>,
    coarse_candidates: Vec<Vec<f32>>,
    /// Unhandicapped score of every lag of the last stage run, from its first lag on.
    scores: Vec<f64>,
}

/// A reference run and the candidate runs to compare with it, in planar signals.
#[derive(Clone, Copy)]
struct Runs<'a> {
    references: &'a [Vec<f32>],
    reference: usize,
    candidates: &'a [Vec<f32>],
    /// Where the candidate of lag 0 starts.
    start: usize,
    len: usize,
}

impl Search {
    /// A search comparing `len` frames of `channels` channels, decimating by
    /// `decimation` (at least 1) in the coarse stage, with lags up to `max_lag`.
    pub(super) fn new(channels: usize, len: usize, max_lag: usize, decimation: usize) -> Self {
        let decimation = decimation.max(1);
        Self {
            len,
            decimation,
            coarse_reference: vec![Vec::with_capacity(len / decimation); channels],
            coarse_candidates: vec![Vec::with_capacity((len + max_lag) / decimation); channels],
            scores: Vec::with_capacity(max_lag / decimation + 2 * decimation + 1),
        }
    }

    /// The lag in `0..=max_lag` whose candidate `planes[c][candidates + lag..][..len]`
    /// best continues the reference `planes[c][reference..][..len]`, and where between
    /// its neighbours (-0.5 to 0.5 frames) the best match lies.
    ///
    /// Every plane must hold `reference + len` frames and the candidates of lags -1 to
    /// `max_lag + 1` (so `candidates` is at least 1).
    pub(super) fn best_lag(
        &mut self,
        planes: &[Vec<f32>],
        reference: usize,
        candidates: usize,
        max_lag: usize,
    ) -> (usize, f64) {
        let runs = Runs {
            references: planes,
            reference,
            candidates: planes,
            start: candidates,
            len: self.len,
        };
        let lags = if self.decimation == 1 {
            0..=max_lag
        } else {
            self.coarse_lags(runs, max_lag)
        };
        let first = *lags.start();
        let lag = best_lag(runs, lags, max_lag / 2, &mut self.scores);
        self.refine(runs, max_lag, first, lag)
    }

    /// The full-rate lags to search: those around the winner of the decimated search.
    fn coarse_lags(&mut self, runs: Runs<'_>, max_lag: usize) -> RangeInclusive<usize> {
        let d = self.decimation;
        let (coarse_len, coarse_lags) = (self.len / d, max_lag / d);
        for (c, plane) in runs.candidates.iter().enumerate() {
            let reference = &plane[runs.reference..runs.reference + coarse_len * d];
            decimate(reference, d, &mut self.coarse_reference[c]);
            let end = runs.start + (coarse_lags + coarse_len) * d;
            decimate(&plane[runs.start..end], d, &mut self.coarse_candidates[c]);
        }
        let coarse = Runs {
            references: &self.coarse_reference,
            reference: 0,
            candidates: &self.coarse_candidates,
            start: 0,
            len: coarse_len,
        };
        let centre = best_lag(coarse, 0..=coarse_lags, coarse_lags / 2, &mut self.scores) * d;
        centre.saturating_sub(d)..=(centre + d).min(max_lag)
    }

    /// From `lag`, the winner among the scores kept (which start at lag `first`), climbs
    /// to a true local maximum of the unhandicapped score within `0..=max_lag`, then
    /// places the peak between frames with a parabola through it and its neighbours.
    fn refine(&self, runs: Runs<'_>, max_lag: usize, first: usize, mut lag: usize) -> (usize, f64) {
        let score = |lag: isize| {
            let kept = usize::try_from(lag)
                .ok()
                .and_then(|lag| lag.checked_sub(first));
            match kept.and_then(|i| self.scores.get(i)) {
                Some(&score) => score,
                None => runs.score(lag),
            }
        };
        let mut here = score(lag as isize);
        loop {
            let (below, above) = (score(lag as isize - 1), score(lag as isize + 1));
            if below > here && lag > 0 {
                (lag, here) = (lag - 1, below);
            } else if above > here && lag < max_lag {
                (lag, here) = (lag + 1, above);
            } else {
                return (lag, peak_offset(below, here, above));
            }
        }
    }
}

impl Runs<'_> {
    /// The unhandicapped score of the candidate at `lag` (which may be -1).
    fn score(&self, lag: isize) -> f64 {
        let start = self.start.wrapping_add_signed(lag);
        let (mut correlation, mut energy) = (0.0, 0.0);
        for (r, c) in self.references.iter().zip(self.candidates) {
            let candidate = &c[start..start + self.len];
            let reference = &r[self.reference..self.reference + self.len];
            correlation += f64::from(dot(reference, candidate));
            energy += f64::from(dot(candidate, candidate));
        }
        correlation / (energy + ENERGY_FLOOR).sqrt()
    }

    /// Square root of the reference's energy: the highest score any candidate can reach.
    fn ceiling(&self) -> f64 {
        let energy: f64 = (self.references.iter())
            .map(|r| {
                f64::from(dot(
                    &r[self.reference..][..self.len],
                    &r[self.reference..][..self.len],
                ))
            })
            .sum();
        energy.sqrt()
    }
}

/// Where the peak of the parabola through three equally spaced scores lies relative to
/// the middle one, within half a step (0 when they do not make a peak).
fn peak_offset(before: f64, here: f64, after: f64) -> f64 {
    let curvature = before - 2.0 * here + after;
    if curvature < 0.0 {
        (0.5 * (before - after) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    }
}

/// Replaces `out` with the sums of consecutive runs of `factor` samples of `samples`.
fn decimate(samples: &[f32], factor: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        samples
            .chunks_exact(factor)
            .map(|run| run.iter().sum::<f32>()),
    );
}

/// The lag in `lags` with the best handicapped score (handicap growing with the square
/// of the distance from `centre`); `scores` receives every lag's unhandicapped score.
fn best_lag(
    runs: Runs<'_>,
    lags: RangeInclusive<usize>,
    centre: usize,
    scores: &mut Vec<f64>,
) -> usize {
    scores.clear();
    let (first, len, start) = (*lags.start(), runs.len, runs.start);
    let mut energy: f64 = (runs.candidates.iter())
        .map(|c| f64::from(dot(&c[start + first..][..len], &c[start + first..][..len])))
        .sum();
    let handicap = CENTRE_BIAS * runs.ceiling() / (centre.max(1) as f64).powi(2);
    let mut best = (f64::NEG_INFINITY, first);
    for lag in lags {
        if lag > first {
            for c in runs.candidates {
                let (gone, new) = (c[start + lag - 1], c[start + lag - 1 + len]);
                energy += f64::from(new) * f64::from(new) - f64::from(gone) * f64::from(gone);
            }
        }
        let correlation: f64 = (runs.references.iter().zip(runs.candidates))
            .map(|(r, c)| f64::from(dot(&r[runs.reference..][..len], &c[start + lag..][..len])))
            .sum();
        let score = correlation / (energy.max(0.0) + ENERGY_FLOOR).sqrt();
        scores.push(score);
        let handicapped = score - handicap * (lag as f64 - centre as f64).powi(2);
        if handicapped > best.0 {
            best = (handicapped, lag);
        }
    }
    best.1
}

/// Dot product of two equally long slices, with eight partial sums so that it
/// vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut sums = [0.0f32; 8];
    let (a_runs, b_runs) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_runs
        .remainder()
        .iter()
        .zip(b_runs.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_runs.zip(b_runs) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(frames: usize, mut seed: u32) -> Vec<f32> {
        (0..frames)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn finds_the_copied_segment_in_noise() {
        // Low-passed noise, so that the coarse stage sees it too.
        let raw = noise(4000, 7);
        let smooth: Vec<f32> = raw.windows(4).map(|w| w.iter().sum()).collect();
        let planes = [smooth.clone(), smooth.iter().map(|s| -0.5 * s).collect()];
        let mut search = Search::new(2, 300, 1000, 8);
        let candidates = 2000;
        for (reference, expected) in [(100, 517), (500, 1000), (1200, 0), (1600, 3)] {
            let planes: Vec<Vec<f32>> = planes
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    p.copy_within(reference..reference + 300, candidates + expected);
                    p
                })
                .collect();
            let (lag, offset) = search.best_lag(&planes, reference, candidates, 1000);
            assert_eq!(lag, expected);
            assert!(offset.abs() < 0.2, "{offset}");
        }
    }

    #[test]
    fn places_the_peak_between_frames() {
        // A slow sine delayed by a fraction of a frame.
        let wave = |shift: f64| -> Vec<f32> {
            (0..3000)
                .map(|i| ((i as f64 - shift) * 0.05).sin() as f32)
                .collect()
        };
        let (reference, candidates) = (wave(0.0), wave(0.3));
        let planes = vec![[&reference[..1000], &candidates[..]].concat()];
        let mut search = Search::new(1, 300, 400, 8);
        // Reference at 100; the exact copy would be at lag 100.3 from candidates 1000.
        let (lag, offset) = search.best_lag(&planes, 100, 1000, 400);
        let found = lag as f64 + offset;
        let period = std::f64::consts::TAU / 0.05;
        let error = (found - 100.3 + period / 2.0).rem_euclid(period) - period / 2.0;
        assert!(error.abs() < 0.02, "{found}");
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let (a, b) = (noise(29, 1), noise(29, 2));
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5);
    }
}
