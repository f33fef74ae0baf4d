//! Maps symphonia's channel descriptions to the `dsp` speaker vocabulary.

use dsp::Speaker;
use symphonia::core::audio::{Channels, Position};

/// The speaker of each plane, in symphonia's canonical plane order (ascending position bit).
pub(super) fn speakers(channels: &Channels) -> Vec<Speaker> {
    match channels {
        Channels::Positioned(positions) => positions.iter().map(speaker).collect(),
        other => Speaker::default_layout(other.count()),
    }
}

fn speaker(position: Position) -> Speaker {
    const TABLE: [(Position, Speaker); 11] = [
        (Position::FRONT_LEFT, Speaker::FrontLeft),
        (Position::FRONT_RIGHT, Speaker::FrontRight),
        (Position::FRONT_CENTER, Speaker::FrontCenter),
        (Position::LFE1, Speaker::Lfe),
        (Position::REAR_LEFT, Speaker::BackLeft),
        (Position::REAR_RIGHT, Speaker::BackRight),
        (Position::FRONT_LEFT_CENTER, Speaker::FrontLeftOfCenter),
        (Position::FRONT_RIGHT_CENTER, Speaker::FrontRightOfCenter),
        (Position::REAR_CENTER, Speaker::BackCenter),
        (Position::SIDE_LEFT, Speaker::SideLeft),
        (Position::SIDE_RIGHT, Speaker::SideRight),
    ];
    TABLE
        .iter()
        .find(|(candidate, _)| *candidate == position)
        .map_or(Speaker::Other, |(_, speaker)| *speaker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_one_maps_in_plane_order() {
        let layout = Channels::Positioned(
            Position::FRONT_LEFT
                | Position::FRONT_RIGHT
                | Position::FRONT_CENTER
                | Position::LFE1
                | Position::SIDE_LEFT
                | Position::SIDE_RIGHT,
        );
        assert_eq!(
            speakers(&layout),
            [
                Speaker::FrontLeft,
                Speaker::FrontRight,
                Speaker::FrontCenter,
                Speaker::Lfe,
                Speaker::SideLeft,
                Speaker::SideRight
            ]
        );
    }

    #[test]
    fn discrete_channels_use_the_default_layout() {
        assert_eq!(speakers(&Channels::Discrete(2)), Speaker::default_layout(2));
    }
}
