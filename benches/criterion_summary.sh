#!/usr/bin/env bash
# Summarises the last `cargo bench --bench pipeline` run (target/criterion/*/new):
# CPU time per 30 s slice, "x realtime" on one core, share of a core per live stream,
# and the ratio "whole Opus job / Opus encoder alone"; then, when present, the last
# `cargo bench --bench filters` run: each filter, the filter chains, their share of the
# Opus encoder's CPU (target <= 15 %), and the whole job with filters.
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

filters = [
    ("tempo_1.25", "Tempo 1.25 alone (WSOLA)"),
    ("eq_bass_boost", "Equalizer bass_boost alone"),
    ("normalize_-14", "Normalizer -14 LUFS alone"),
    ("gain_1.5_limiter", "Gain 1.5 alone (with limiter)"),
    ("chain_48k_fx", "full filter chain 48 kHz: speed 1.25 + bass_boost + volume 1.5 + normalize -14"),
    ("chain_48k_fx_no_normalize", "filter chain 48 kHz without normalize (speed + bass_boost + volume)"),
    ("chain_44k1_to_48k_fx", "pipeline chain 44.1 -> 48 kHz + the four filters"),
    ("opus_encoder_alone", "Opus encoder alone, 128k (48 kHz stereo f32 in)"),
    ("mp3_to_opus128k_fx", "whole job mp3 -> Opus 128k + speed, bass_boost, volume (24 s out)"),
]
fns = {}
rows = []
for bench, label in filters:
    path = os.path.join(base, "filters_30s", bench, "new", "estimates.json")
    try:
        est = json.load(open(path))
    except FileNotFoundError:
        continue
    med = est["median"]["point_estimate"]
    lo = est["mean"]["confidence_interval"]["lower_bound"]
    hi = est["mean"]["confidence_interval"]["upper_bound"]
    fns[bench] = med
    rows.append((label, med, lo, hi))
if rows:
    enc = fns.get("opus_encoder_alone")
    print()
    print("Filters (`cargo bench --bench filters`; 30 s of 48 kHz stereo input, x realtime = 30 s of input / CPU):")
    print()
    print("| Benchmark (30 s of input) | CPU ms (median [95 % CI of mean]) | x realtime, one core | CPU / Opus encoder alone |")
    print("|---|---:|---:|---:|")
    for label, med, lo, hi in rows:
        share = f"{100 * med / enc:.1f} %" if enc else ""
        print(f"| {label} | {med / 1e6:.1f} [{lo / 1e6:.1f}-{hi / 1e6:.1f}] | {slice_s / (med / 1e9):.0f}x | {share} |")
    if enc:
        print()
        for bench in ("chain_48k_fx", "chain_48k_fx_no_normalize"):
            if bench in fns:
                r = fns[bench] / enc
                # After speed 1.25 the encoder sees 24 s, not 30 s.
                r24 = fns[bench] / (enc / 1.25)
                print(f"{bench} / Opus encoder alone (30 s): {100 * r:.1f} % "
                      f"(target <= 15 %: {'met' if r <= 0.15 else 'missed'}); "
                      f"/ encoder on the 24 s the job encodes: {100 * r24:.1f} %")
PY
