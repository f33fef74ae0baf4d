//! `Block`: planar f32 audio, the one boundary type between decode, dsp and encode.

/// Planar f32 audio: `plane(c)[i]` is frame `i` of channel `c`; every plane has the
/// same length. Buffers are reused: `clear` keeps their capacity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    planes: Vec<Vec<f32>>,
}

impl Block {
    /// An empty block with `channels` planes.
    pub fn new(channels: usize) -> Self {
        Self {
            planes: vec![Vec::new(); channels],
        }
    }

    /// A block of `frames` frames of silence on `channels` planes.
    pub fn silence(channels: usize, frames: usize) -> Self {
        Self {
            planes: vec![vec![0.0; frames]; channels],
        }
    }

    /// Wraps existing planes.
    ///
    /// # Panics
    /// When the planes do not all have the same length (a programming error).
    pub fn from_planes(planes: Vec<Vec<f32>>) -> Self {
        let frames = planes.first().map_or(0, Vec::len);
        assert!(
            planes.iter().all(|p| p.len() == frames),
            "all planes of a block must have the same length"
        );
        Self { planes }
    }

    /// Number of channels (planes).
    pub fn channels(&self) -> usize {
        self.planes.len()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }

    /// True when the block holds no frames.
    pub fn is_empty(&self) -> bool {
        self.frames() == 0
    }

    /// The samples of channel `channel`.
    pub fn plane(&self, channel: usize) -> &[f32] {
        &self.planes[channel]
    }

    /// All planes, in channel order.
    pub fn planes(&self) -> &[Vec<f32>] {
        &self.planes
    }

    /// All planes, mutable. Callers must keep every plane the same length.
    pub fn planes_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.planes
    }

    /// Removes all frames and sets the channel count, keeping allocated capacity.
    pub fn reset_to(&mut self, channels: usize) {
        self.planes.resize_with(channels, Vec::new);
        self.planes.iter_mut().for_each(Vec::clear);
    }

    /// Removes all frames, keeping the channel count and allocated capacity.
    pub fn clear(&mut self) {
        self.planes.iter_mut().for_each(Vec::clear);
    }

    /// Replaces the content with a copy of `other` (channel count included).
    pub fn copy_from(&mut self, other: &Block) {
        self.reset_to(other.channels());
        self.append(other);
    }

    /// Appends the frames of `other`, which must have the same channel count.
    pub fn append(&mut self, other: &Block) {
        debug_assert_eq!(self.channels(), other.channels());
        for (dst, src) in self.planes.iter_mut().zip(&other.planes) {
            dst.extend_from_slice(src);
        }
    }

    /// Appends `frames` frames of silence.
    pub fn push_silence(&mut self, frames: usize) {
        for plane in &mut self.planes {
            plane.resize(plane.len() + frames, 0.0);
        }
    }

    /// Drops the first `frames` frames (all of them when there are fewer).
    pub fn drop_front(&mut self, frames: usize) {
        for plane in &mut self.planes {
            let n = frames.min(plane.len());
            plane.drain(..n);
        }
    }

    /// Keeps only the first `frames` frames.
    pub fn truncate(&mut self, frames: usize) {
        self.planes.iter_mut().for_each(|p| p.truncate(frames));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_edits() {
        let mut block = Block::new(2);
        block.append(&Block::from_planes(vec![
            vec![1.0, 2.0, 3.0],
            vec![-1.0, -2.0, -3.0],
        ]));
        assert_eq!(block.frames(), 3);
        assert_eq!(block.plane(1), &[-1.0, -2.0, -3.0]);
        block.drop_front(1);
        block.truncate(1);
        assert_eq!(block.plane(0), &[2.0]);
        block.push_silence(2);
        assert_eq!(block.plane(0), &[2.0, 0.0, 0.0]);
        block.reset_to(1);
        assert_eq!((block.channels(), block.frames()), (1, 0));
    }

    #[test]
    #[should_panic(expected = "same length")]
    fn uneven_planes_are_a_programming_error() {
        Block::from_planes(vec![vec![0.0; 2], vec![0.0; 3]]);
    }
}
