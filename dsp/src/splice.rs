//! A live varispeed change: moves the resampling stage of a running chain from one
//! resampler (or none) to another at an exact input frame, without a click. Knows the
//! `Resampler` verbs it needs, nothing of the chain around it.

use crate::{Block, Processor, Resampler};

/// The resampling stage while a new varispeed takes over at input frame `S` (the first
/// frame fed after the change).
///
/// - The outgoing resampler (if any) gets `end_input` at `S` and keeps reading the input
///   after it as look-ahead until it has written its last frame (the one before `S`), so
///   its tail is computed from the real signal instead of flushed against silence.
/// - The incoming resampler (if any) waits for its `prime_frames` of input from `S` on,
///   is primed with their odd reflection about `S` (`2·x(S) − x(S + k)`: value and slope
///   continuous, so its filter sees no edge; only its output for frames from `S` on is
///   kept), and then reads them for real.
/// - Its output waits until the outgoing side is done, so the order of frames is kept.
///
/// Neither side drops nor repeats a frame: the stream is the old mapping of the input
/// before `S` followed by the new mapping of the input from `S` (the first new frame is
/// `S` itself, within half an output frame for rate pairs without a small common divisor).
/// The only change at the splice is the playback speed, as when a record's speed switch
/// is flipped: no jump, no dip, no crossfade of two differently timed signals (which
/// would beat). `is_settled` tells the chain when it can put back a plain stage.
pub(crate) struct Splice {
    outgoing: Option<Resampler>,
    incoming: Option<Resampler>,
    /// Input from `S` on, kept until the incoming resampler has enough to be primed.
    waiting: Option<Block>,
    /// Incoming output held back while the outgoing side finishes.
    held: Block,
    scratch: Block,
    /// True once any input has been read.
    fed: bool,
}

impl Splice {
    /// Starts a splice from `outgoing` (`None`: no resampling) to `incoming` (`None`: no
    /// resampling from now on) at the next input frame.
    pub(crate) fn new(
        outgoing: Option<Resampler>,
        incoming: Option<Resampler>,
        channels: usize,
    ) -> Self {
        let outgoing = outgoing.map(|mut resampler| {
            resampler.end_input();
            resampler
        });
        let waiting = incoming.as_ref().map(|_| Block::new(channels));
        Self {
            outgoing: outgoing.filter(|r| !r.is_done()),
            incoming,
            waiting,
            held: Block::new(channels),
            scratch: Block::new(channels),
            fed: false,
        }
    }

    /// True until the splice has read its first input frame: a further change may still
    /// replace the incoming side.
    pub(crate) fn is_untouched(&self) -> bool {
        !self.fed
    }

    /// Replaces the incoming side of an untouched splice (see `is_untouched`).
    pub(crate) fn retarget(&mut self, incoming: Option<Resampler>, channels: usize) {
        self.waiting = incoming.as_ref().map(|_| Block::new(channels));
        self.incoming = incoming;
    }

    /// Output frames owed for the input read so far that have not come out yet: the
    /// rest of the outgoing side first, then the incoming side's.
    pub(crate) fn frames_pending(&self) -> usize {
        let old = self.outgoing.as_ref().map_or(0, Resampler::frames_pending);
        let new = match (&self.incoming, &self.waiting) {
            (Some(resampler), Some(waiting)) => {
                let (input, output) = (resampler.input_rate_hz(), resampler.output_rate_hz());
                let frames = waiting.frames() as u64 * u64::from(output) + u64::from(input / 2);
                usize::try_from(frames / u64::from(input)).unwrap_or(usize::MAX)
            }
            (Some(resampler), None) => resampler.frames_pending(),
            (None, _) => 0,
        };
        old + self.held.frames() + new
    }

    /// True once the splice is over: the outgoing side is done and nothing is held.
    pub(crate) fn is_settled(&self) -> bool {
        self.outgoing.is_none() && self.waiting.is_none() && self.held.is_empty()
    }

    /// The incoming resampler of a settled splice (`None`: no resampling).
    pub(crate) fn into_incoming(self) -> Option<Resampler> {
        self.incoming
    }

    /// Runs `input` through the incoming side into `scratch`, priming it first once it
    /// has gathered enough input.
    fn run_incoming(&mut self, input: &Block, last: bool) {
        self.scratch.reset_to(input.channels());
        let Some(resampler) = &mut self.incoming else {
            self.scratch.append(input);
            return;
        };
        let Some(waiting) = &mut self.waiting else {
            resampler.process(input, &mut self.scratch);
            return;
        };
        waiting.append(input);
        if waiting.frames() >= resampler.prime_frames() || (last && !waiting.is_empty()) {
            let prime_len = resampler.prime_frames().min(waiting.frames());
            resampler.prime(&reflection(waiting, prime_len));
            resampler.process(waiting, &mut self.scratch);
            self.waiting = None;
        }
    }
}

/// The odd reflection of the first `frames` frames of `block` about its first frame, in
/// time order: `2·x(0) − x(frames − i)` for i = 0, 1, …, frames − 1.
fn reflection(block: &Block, frames: usize) -> Block {
    let planes = block
        .planes()
        .iter()
        .map(|plane| {
            let origin = plane[0];
            (1..=frames)
                .rev()
                .map(|k| 2.0 * origin - plane[k.min(plane.len() - 1)])
                .collect()
        })
        .collect();
    Block::from_planes(planes)
}

impl Processor for Splice {
    fn process(&mut self, input: &Block, output: &mut Block) {
        output.reset_to(input.channels());
        self.fed |= !input.is_empty();
        if let Some(resampler) = &mut self.outgoing {
            resampler.process(input, output);
            if resampler.is_done() {
                self.outgoing = None;
            }
        }
        self.run_incoming(input, false);
        if self.outgoing.is_some() {
            self.held.append(&self.scratch);
        } else {
            output.append(&self.held);
            output.append(&self.scratch);
            self.held.clear();
        }
    }

    fn flush(&mut self, output: &mut Block) {
        output.reset_to(self.held.channels());
        if let Some(mut resampler) = self.outgoing.take() {
            resampler.flush(output);
        }
        let empty = Block::new(self.held.channels());
        self.run_incoming(&empty, true);
        output.append(&self.held);
        output.append(&self.scratch);
        self.held.clear();
        self.waiting = None;
        if let Some(resampler) = &mut self.incoming {
            resampler.flush(&mut self.scratch);
            output.append(&self.scratch);
        }
    }

    fn reset(&mut self) {
        self.outgoing = None;
        self.waiting = None;
        self.held.clear();
        if let Some(resampler) = &mut self.incoming {
            resampler.reset();
        }
    }
}
