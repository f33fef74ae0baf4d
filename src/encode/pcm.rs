//! Raw PCM: interleaved signed 16-bit little-endian samples.

use dsp::Block;

use super::{EncodeError, Encoder, to_s16};

/// Converts f32 to s16le with rounding to nearest and saturation (never wraps).
#[derive(Debug, Default)]
pub struct PcmEncoder;

impl Encoder for PcmEncoder {
    fn write(&mut self, block: &Block, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.resize(start + block.frames() * block.channels() * 2, 0);
        let bytes = &mut out[start..];
        match block.planes() {
            [mono] => {
                for (dst, &s) in bytes.chunks_exact_mut(2).zip(mono) {
                    dst.copy_from_slice(&to_s16(s).to_le_bytes());
                }
            }
            [left, right] => {
                for ((dst, &l), &r) in bytes.chunks_exact_mut(4).zip(left).zip(right) {
                    dst[..2].copy_from_slice(&to_s16(l).to_le_bytes());
                    dst[2..].copy_from_slice(&to_s16(r).to_le_bytes());
                }
            }
            planes => {
                let samples = (0..block.frames()).flat_map(|i| planes.iter().map(move |p| p[i]));
                for (dst, s) in bytes.chunks_exact_mut(2).zip(samples) {
                    dst.copy_from_slice(&to_s16(s).to_le_bytes());
                }
            }
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
    fn interleaves_stereo_little_endian() {
        let block = Block::from_planes(vec![vec![0.5, 0.0], vec![-0.5, 1.0]]);
        let mut out = Vec::new();
        PcmEncoder.write(&block, &mut out).unwrap();
        let samples: Vec<i16> = out
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(samples, [16384, -16384, 0, 32767]);
    }
}
