//! `Speaker`: the position of one input channel, its conventional layouts and its
//! ITU-R BS.775 stereo downmix gains. Knows nothing of how a mix is applied.

/// −3 dB: the ITU-R BS.775 level for a channel folded into two (or from two into one).
pub(crate) const MINUS_3_DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// The position of one input channel, as a decoder reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// Front left.
    FrontLeft,
    /// Front right.
    FrontRight,
    /// Front centre (also the single channel of a mono stream).
    FrontCenter,
    /// Low-frequency effects; dropped by downmixes, as ITU-R BS.775 does.
    Lfe,
    /// Back (rear) left.
    BackLeft,
    /// Back (rear) right.
    BackRight,
    /// Side left.
    SideLeft,
    /// Side right.
    SideRight,
    /// Back centre.
    BackCenter,
    /// Front left of centre.
    FrontLeftOfCenter,
    /// Front right of centre.
    FrontRightOfCenter,
    /// Any position without a downmix rule; used only when nothing else is present.
    Other,
}

impl Speaker {
    /// The conventional layout for a channel count when the source names none
    /// (WAV without a channel mask, most codecs' defaults).
    pub fn default_layout(channels: usize) -> Vec<Speaker> {
        use Speaker::*;
        match channels {
            1 => vec![FrontCenter],
            2 => vec![FrontLeft, FrontRight],
            3 => vec![FrontLeft, FrontRight, FrontCenter],
            4 => vec![FrontLeft, FrontRight, BackLeft, BackRight],
            5 => vec![FrontLeft, FrontRight, FrontCenter, BackLeft, BackRight],
            6 => vec![FrontLeft, FrontRight, FrontCenter, Lfe, BackLeft, BackRight],
            7 => vec![
                FrontLeft,
                FrontRight,
                FrontCenter,
                Lfe,
                BackLeft,
                BackRight,
                BackCenter,
            ],
            8 => vec![
                FrontLeft,
                FrontRight,
                FrontCenter,
                Lfe,
                BackLeft,
                BackRight,
                SideLeft,
                SideRight,
            ],
            n => vec![Other; n],
        }
    }

    /// Stereo downmix gains `(left, right)` of this speaker; `has_front_pair` says whether
    /// the input also has front left/right, without which the centre is the whole image.
    pub(crate) fn stereo_gains(self, has_front_pair: bool) -> (f32, f32) {
        use Speaker::*;
        match self {
            FrontLeft => (1.0, 0.0),
            FrontRight => (0.0, 1.0),
            FrontCenter if has_front_pair => (MINUS_3_DB, MINUS_3_DB),
            FrontCenter => (1.0, 1.0),
            BackLeft | SideLeft | FrontLeftOfCenter => (MINUS_3_DB, 0.0),
            BackRight | SideRight | FrontRightOfCenter => (0.0, MINUS_3_DB),
            BackCenter => (MINUS_3_DB * MINUS_3_DB, MINUS_3_DB * MINUS_3_DB),
            Lfe | Other => (0.0, 0.0),
        }
    }
}
