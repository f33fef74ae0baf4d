#!/usr/bin/env bash
# Summarises the last `cargo bench --bench pipeline` run (target/criterion/*/new):
# CPU time per 30 s slice, "x realtime" on one core, share of a core per live stream,
# and the ratio "whole Opus job / Opus encoder alone".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CRITERION_DIR:-${CARGO_TARGET_DIR:-$root/target}/criterion}"
python3 - "$dir" <<'PY'
import json, os, sys

base = sys.argv[1]
slice_s = 30.0
benches = [
    ("pipeline_30s", "mp3_to_pcm48k", "whole job: mp3 -> PCM s16le 48 kHz stereo"),
    ("pipeline_30s", "mp3_to_opus128k", "whole job: mp3 -> Ogg Opus 128k"),
    ("pipeline_30s", "mp3_to_aac128k", "whole job: mp3 -> AAC-LC 128k 48 kHz"),
    ("opus_encoder_alone_30s", "48k_stereo_128k", "Opus encoder alone (48 kHz stereo f32 in)"),
    ("stages_30s", "decode_mp3", "decode alone (mp3 -> planar f32)"),
    ("stages_30s", "dsp_44k1_to_48k_stereo", "dsp chain alone (44.1 -> 48 kHz stereo)"),
]
ns = {}
print("| Benchmark (30 s slice) | CPU ms (median [95 % CI of mean]) | x realtime, one core | core share per live stream |")
print("|---|---:|---:|---:|")
for group, bench, label in benches:
    path = os.path.join(base, group, bench, "new", "estimates.json")
    try:
        est = json.load(open(path))
    except FileNotFoundError:
        print(f"| {label} | missing ({path}) | | |")
        continue
    med = est["median"]["point_estimate"]
    lo = est["mean"]["confidence_interval"]["lower_bound"]
    hi = est["mean"]["confidence_interval"]["upper_bound"]
    ns[bench] = med
    x = slice_s / (med / 1e9)
    print(f"| {label} | {med / 1e6:.1f} [{lo / 1e6:.1f}-{hi / 1e6:.1f}] | {x:.0f}x | {100 / x:.3f} % |")
print()
if "mp3_to_opus128k" in ns and "48k_stereo_128k" in ns:
    r = ns["mp3_to_opus128k"] / ns["48k_stereo_128k"]
    print(f"Whole Opus job / Opus encoder alone: {r:.3f}x (target <= 1.25x: {'met' if r <= 1.25 else 'missed'})")
if all(k in ns for k in ("decode_mp3", "dsp_44k1_to_48k_stereo", "48k_stereo_128k", "mp3_to_opus128k")):
    parts = ns["decode_mp3"] + ns["dsp_44k1_to_48k_stereo"] + ns["48k_stereo_128k"]
    print(f"decode + dsp + encoder alone = {parts / 1e6:.1f} ms vs whole Opus job {ns['mp3_to_opus128k'] / 1e6:.1f} ms")
PY
