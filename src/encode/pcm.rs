//! Raw PCM: interleaved signed 16-bit little-endian samples.

use dsp::Block;

use super::{EncodeError, Encoder, interleave};

/// Converts f32 to s16le with rounding to nearest and saturation (never wraps).
pub struct PcmEncoder {
    samples: Vec<i16>,
}

impl PcmEncoder {
    /// A PCM encoder; `channels` only sizes the first buffer.
    pub fn new(channels: usize) -> Self {
        Self {
            samples: Vec::with_capacity(4096 * channels),
        }
    }
}

/// One f32 sample (full scale = 1.0) as s16: rounded to nearest, saturated at the rails.
pub fn to_s16(sample: f32) -> i16 {
    // `as` from f32 saturates at the i16 bounds and maps NaN to 0.
    (sample * 32768.0).round() as i16
}

impl Encoder for PcmEncoder {
    fn write(&mut self, block: &Block, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        interleave(block, &mut self.samples, to_s16);
        out.reserve(self.samples.len() * 2);
        for sample in &self.samples {
            out.extend_from_slice(&sample.to_le_bytes());
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_rounding_and_saturation() {
        assert_eq!(to_s16(0.0), 0);
        assert_eq!(to_s16(0.5), 16384);
        assert_eq!(to_s16(-1.0), -32768);
        assert_eq!(
            to_s16(1.0),
            32767,
            "full scale saturates instead of wrapping"
        );
        assert_eq!(to_s16(3.0), 32767);
        assert_eq!(to_s16(-3.0), -32768);
        assert_eq!(to_s16(f32::NAN), 0);
    }

    #[test]
    fn interleaves_stereo_little_endian() {
        let block = Block::from_planes(vec![vec![0.5, 0.0], vec![-0.5, 1.0]]);
        let mut out = Vec::new();
        PcmEncoder::new(2).write(&block, &mut out).unwrap();
        let samples: Vec<i16> = out
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(samples, [16384, -16384, 0, 32767]);
    }
}
