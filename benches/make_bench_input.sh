#!/usr/bin/env bash
# Generates the benchmark input: 3 minutes of music-like audio (changing chords with
# amplitude modulation, percussive pink-noise bursts, a decaying hi-hat-like tone),
# 44.1 kHz stereo, MP3 at 192 kbit/s, into bench-data/music.mp3.
#
# Deterministic (fixed noise seed, bit-exact encoder settings) and idempotent: an
# existing file is kept. Set FORCE=1 to regenerate. Needs ffmpeg with libmp3lame.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${BENCH_DATA_DIR:-$root/bench-data}"
out="$out_dir/music.mp3"

if [[ -s "$out" && "${FORCE:-0}" != 1 ]]; then
    echo "$out exists" >&2
    exit 0
fi

command -v ffmpeg >/dev/null || { echo "ffmpeg is required" >&2; exit 1; }
mkdir -p "$out_dir"

# Left: a root chord stepping through 8 semitones (one step per second) with 2 Hz
# tremolo, a second voice stepping twice per second, and a 1760 Hz ping decaying every
# 0.5 s. Right: the same root slightly phase-shifted with its own tremolo and a third
# voice on a 7-step cycle. Plus pink noise (fixed seed) shaped into 4-per-second hits.
left='0.25*sin(2*PI*(220*pow(2,floor(mod(t,8))/12))*t)*(0.6+0.4*sin(2*PI*2*t))+0.12*sin(2*PI*(330*pow(2,floor(mod(t*2,5))/12))*t)+0.05*sin(2*PI*1760*t)*exp(-mod(t,0.5)*8)'
right='0.25*sin(2*PI*(220*pow(2,floor(mod(t,8))/12))*t+0.3)*(0.6+0.4*cos(2*PI*2*t))+0.12*sin(2*PI*(440*pow(2,floor(mod(t*3,7))/12))*t)'

tmp="$out.tmp.$$.mp3"
trap 'rm -f "$tmp"' EXIT
ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "aevalsrc=exprs='$left|$right':s=44100:d=180" \
    -f lavfi -i "anoisesrc=c=pink:r=44100:a=0.08:d=180:seed=1" \
    -filter_complex "[1]volume='0.3+0.7*exp(-mod(t,0.25)*20)':eval=frame,aformat=channel_layouts=stereo[n];[0][n]amix=inputs=2:normalize=0" \
    -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
    -c:a libmp3lame -b:a 192k "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out" >&2
