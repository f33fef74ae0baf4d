//! The `ChannelMapper` that down- or up-mixes any speaker layout to mono or stereo.
//! Knows nothing of codecs or containers: the decoder names the speakers.

use crate::speaker::MINUS_3_DB;
pub use crate::speaker::Speaker;
use crate::{Block, ConfigError, MAX_CHANNELS, Processor};

/// How a `ChannelMapper` produces its output.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// The output is the input: a copy.
    Copy,
    /// `rows[out][in]` is the gain of input channel `in` in output channel `out`.
    Matrix(Vec<Vec<f32>>),
}

/// Mixes any speaker layout into mono or stereo with ITU-R BS.775 coefficients
/// (those of ffmpeg's swresample for the common layouts), scaled so that no output can
/// exceed full scale.
#[derive(Debug, Clone)]
pub struct ChannelMapper {
    input_channels: usize,
    output_channels: usize,
    mode: Mode,
}

impl ChannelMapper {
    /// Builds the mix from `input` speakers (1 to 32 channels) to `output_channels`
    /// (1 or 2).
    ///
    /// Stereo: L = FL + 0.7071·FC + 0.7071·(BL, SL, FLC) + 0.5·BC, R likewise; LFE dropped;
    /// a lone centre is duplicated at full level. Mono: 0.7071·(L + R). When the largest
    /// output row's absolute gains sum above 1, every row is divided by that one sum, as
    /// swresample does, so the balance between outputs is kept (stereo to mono gives
    /// 0.5·L + 0.5·R; 5.1 to stereo gives L = (FL + 0.7071·FC + 0.7071·BL) / 2.4142).
    /// A layout with no mappable speaker (all `Other` or LFE) is averaged into every output.
    /// A single input channel is mono whatever speaker it is labelled with (containers
    /// often call it front left): it is copied to mono and duplicated to stereo.
    pub fn try_new(input: &[Speaker], output_channels: usize) -> Result<Self, ConfigError> {
        if input.is_empty() || input.len() > MAX_CHANNELS || !(1..=2).contains(&output_channels) {
            return Err(ConfigError::Channels {
                input: input.len(),
                output: output_channels,
            });
        }
        let rows = mix_rows(input, output_channels);
        let mode = if is_identity(&rows) {
            Mode::Copy
        } else {
            Mode::Matrix(rows)
        };
        Ok(Self {
            input_channels: input.len(),
            output_channels,
            mode,
        })
    }

    /// True when the output is a plain copy of the input (the layout already matches).
    pub fn is_identity(&self) -> bool {
        self.mode == Mode::Copy
    }

    /// The gain of input channel `input` in output channel `output`.
    pub fn coefficient(&self, output: usize, input: usize) -> f32 {
        match &self.mode {
            Mode::Copy => f32::from(u8::from(output == input)),
            Mode::Matrix(rows) => rows[output][input],
        }
    }

    /// Number of channels this mapper reads.
    pub fn input_channels(&self) -> usize {
        self.input_channels
    }

    /// Number of channels this mapper writes.
    pub fn output_channels(&self) -> usize {
        self.output_channels
    }
}

/// The normalised mix matrix, one row per output channel.
fn mix_rows(input: &[Speaker], output_channels: usize) -> Vec<Vec<f32>> {
    let input = match input {
        [_] => &[Speaker::FrontCenter],
        _ => input,
    };
    let has_front_pair = input
        .iter()
        .any(|s| matches!(s, Speaker::FrontLeft | Speaker::FrontRight));
    let (mut left, mut right): (Vec<f32>, Vec<f32>) =
        input.iter().map(|s| s.stereo_gains(has_front_pair)).unzip();
    if left.iter().chain(&right).all(|&g| g == 0.0) {
        // Nothing has a rule: average the unknown speakers (or, for an LFE-only stream,
        // everything) into a mono image.
        let any_other = input.contains(&Speaker::Other);
        let averaged = |s: &Speaker| !any_other || *s == Speaker::Other;
        let share = 1.0 / input.iter().filter(|s| averaged(s)).count() as f32;
        left = input
            .iter()
            .map(|s| if averaged(s) { share } else { 0.0 })
            .collect();
        right.clone_from(&left);
    }
    let mut rows = if output_channels == 1 {
        vec![
            left.iter()
                .zip(&right)
                .map(|(l, r)| MINUS_3_DB * (l + r))
                .collect(),
        ]
    } else {
        vec![left, right]
    };
    normalize(&mut rows);
    rows
}

/// Divides every row by the largest row sum of absolute gains when that exceeds 1, so
/// no output can clip and all outputs keep their relative level (swresample's rule).
fn normalize(rows: &mut [Vec<f32>]) {
    let largest = rows
        .iter()
        .map(|row| row.iter().map(|g| g.abs()).sum::<f32>())
        .fold(0.0_f32, f32::max);
    if largest > 1.0 {
        rows.iter_mut().flatten().for_each(|gain| *gain /= largest);
    }
}

/// True when `rows` is square with exactly 1 on the diagonal and 0 elsewhere.
fn is_identity(rows: &[Vec<f32>]) -> bool {
    rows.iter().enumerate().all(|(o, row)| {
        row.len() == rows.len()
            && row
                .iter()
                .enumerate()
                .all(|(i, &g)| g == f32::from(u8::from(o == i)))
    })
}

impl Processor for ChannelMapper {
    fn process(&mut self, input: &Block, output: &mut Block) {
        debug_assert_eq!(input.channels(), self.input_channels);
        let rows = match &self.mode {
            Mode::Copy => return output.copy_from(input),
            Mode::Matrix(rows) => rows,
        };
        output.reset_to(self.output_channels);
        output.push_silence(input.frames());
        for (out, row) in output.planes_mut().iter_mut().zip(rows) {
            for (src, &gain) in input.planes().iter().zip(row) {
                if gain != 0.0 {
                    out.iter_mut().zip(src).for_each(|(o, &s)| *o += gain * s);
                }
            }
        }
    }

    fn flush(&mut self, output: &mut Block) {
        output.reset_to(self.output_channels);
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use Speaker::*;

    const EPS: f32 = 1e-6;

    fn rows(input: &[Speaker], output_channels: usize) -> Vec<Vec<f32>> {
        let mapper = ChannelMapper::try_new(input, output_channels).unwrap();
        (0..output_channels)
            .map(|o| (0..input.len()).map(|i| mapper.coefficient(o, i)).collect())
            .collect()
    }

    fn assert_rows(actual: &[Vec<f32>], expected: &[&[f32]]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert_eq!(a.len(), e.len(), "{actual:?} vs {expected:?}");
            for (x, y) in a.iter().zip(e.iter()) {
                assert!((x - y).abs() < EPS, "{actual:?} vs {expected:?}");
            }
        }
    }

    #[test]
    fn matching_layouts_are_copies() {
        assert!(
            ChannelMapper::try_new(&[FrontCenter], 1)
                .unwrap()
                .is_identity()
        );
        assert!(
            ChannelMapper::try_new(&[FrontLeft, FrontRight], 2)
                .unwrap()
                .is_identity()
        );
        assert!(
            !ChannelMapper::try_new(&[FrontRight, FrontLeft], 2)
                .unwrap()
                .is_identity()
        );
    }

    #[test]
    fn mono_to_stereo_duplicates_at_full_level() {
        assert_rows(&rows(&[FrontCenter], 2), &[&[1.0], &[1.0]]);
    }

    #[test]
    fn stereo_to_mono_is_the_average() {
        assert_rows(&rows(&[FrontLeft, FrontRight], 1), &[&[0.5, 0.5]]);
    }

    #[test]
    fn five_one_to_stereo_matches_swresample() {
        let sum = 1.0 + 2.0 * MINUS_3_DB;
        let (a, c) = (1.0 / sum, MINUS_3_DB / sum);
        assert_rows(
            &rows(&Speaker::default_layout(6), 2),
            &[&[a, 0.0, c, 0.0, c, 0.0], &[0.0, a, c, 0.0, 0.0, c]],
        );
    }

    #[test]
    fn five_one_to_mono_keeps_the_centre_loudest() {
        let m = MINUS_3_DB;
        let raw = [m, m, 1.0, 0.0, 0.5, 0.5];
        let sum: f32 = raw.iter().sum();
        let expected: Vec<f32> = raw.iter().map(|g| g / sum).collect();
        assert_rows(&rows(&Speaker::default_layout(6), 1), &[&expected]);
    }

    #[test]
    fn seven_one_folds_back_and_side_into_each_side() {
        let sum = 1.0 + 3.0 * MINUS_3_DB;
        let (a, c) = (1.0 / sum, MINUS_3_DB / sum);
        let layout = Speaker::default_layout(8);
        assert_rows(
            &rows(&layout, 2),
            &[
                &[a, 0.0, c, 0.0, c, 0.0, c, 0.0],
                &[0.0, a, c, 0.0, 0.0, c, 0.0, c],
            ],
        );
    }

    #[test]
    fn back_centre_is_split_at_half_level() {
        let layout = Speaker::default_layout(7);
        let r = rows(&layout, 2);
        let sum = 1.0 + 2.0 * MINUS_3_DB + 0.5;
        assert!((r[0][6] - 0.5 / sum).abs() < EPS && (r[1][6] - 0.5 / sum).abs() < EPS);
    }

    #[test]
    fn quad_to_stereo() {
        let sum = 1.0 + MINUS_3_DB;
        let (a, c) = (1.0 / sum, MINUS_3_DB / sum);
        assert_rows(
            &rows(&Speaker::default_layout(4), 2),
            &[&[a, 0.0, c, 0.0], &[0.0, a, 0.0, c]],
        );
    }

    #[test]
    fn asymmetric_layouts_keep_the_balance() {
        // One scalar for all rows: a centred front pair stays centred.
        let sum = 1.0 + MINUS_3_DB;
        let (a, c) = (1.0 / sum, MINUS_3_DB / sum);
        let r = rows(&[FrontLeft, FrontRight, BackLeft], 2);
        assert_rows(&r, &[&[a, 0.0, c], &[0.0, a, 0.0]]);
        let mut mapper = ChannelMapper::try_new(&[FrontLeft, FrontRight, BackLeft], 2).unwrap();
        let input = Block::from_planes(vec![vec![0.5], vec![0.5], vec![0.0]]);
        let mut output = Block::default();
        mapper.process(&input, &mut output);
        assert_eq!(output.plane(0), output.plane(1));
    }

    #[test]
    fn one_channel_is_mono_whatever_its_label() {
        for label in [FrontLeft, FrontRight, BackLeft, Lfe, Other, FrontCenter] {
            assert_rows(&rows(&[label], 2), &[&[1.0], &[1.0]]);
            assert!(ChannelMapper::try_new(&[label], 1).unwrap().is_identity());
        }
    }

    #[test]
    fn unknown_layouts_are_averaged() {
        assert_rows(&rows(&[Other; 4], 2), &[&[0.25; 4], &[0.25; 4]]);
        assert_rows(&rows(&[Other; 10], 1), &[&[0.1; 10]]);
        assert_rows(&rows(&[Other, Lfe, Other], 1), &[&[0.5, 0.0, 0.5]]);
        assert_rows(&rows(&[Lfe], 2), &[&[1.0], &[1.0]]);
        // A known speaker wins: the unknown ones are ignored.
        assert_rows(&rows(&[FrontCenter, Other], 1), &[&[1.0, 0.0]]);
    }

    #[test]
    fn no_row_exceeds_full_scale() {
        for channels in 1..=MAX_CHANNELS {
            for output in 1..=2 {
                for row in rows(&Speaker::default_layout(channels), output) {
                    assert!(row.iter().map(|g| g.abs()).sum::<f32>() <= 1.0 + EPS);
                }
            }
        }
    }

    #[test]
    fn rejects_unmappable_counts() {
        assert!(ChannelMapper::try_new(&[], 2).is_err());
        assert!(ChannelMapper::try_new(&[FrontCenter], 3).is_err());
        assert!(ChannelMapper::try_new(&[FrontCenter], 0).is_err());
        assert!(ChannelMapper::try_new(&[Other; 33], 2).is_err());
    }

    #[test]
    fn mixes_samples() {
        let mut mapper = ChannelMapper::try_new(&[FrontLeft, FrontRight], 1).unwrap();
        let input = Block::from_planes(vec![vec![1.0, 0.5], vec![-1.0, 0.5]]);
        let mut output = Block::default();
        mapper.process(&input, &mut output);
        assert_eq!(output, Block::from_planes(vec![vec![0.0, 0.5]]));
    }
}
