#!/usr/bin/env bash
# Whole-process comparison: our release CLI against ffmpeg doing the same job at the
# same settings, on the 3-minute benchmark input (benches/make_bench_input.sh).
#
#   bash benches/compare.sh [RUNS]          # RUNS defaults to 7
#
# Environment: BIN (our binary, default target/release/rust-transcoder; build it first
# with `cargo build --release`), INPUT (default bench-data/music.mp3), JOBS (default
# "pcm opus aac aac44"), FFMPEG (default ffmpeg).
#
# Filter jobs (not in the default JOBS; run them with
# `JOBS="opus opus_fx opus_fx_norm" bash benches/compare.sh 7`):
#   opus_fx       the Opus job with --speed 1.25 --eq bass_boost --volume 1.5, against
#                 ffmpeg -af atempo=1.25,bass=g=6,volume=1.5 (target ours <= 0.6x);
#   opus_fx_norm  the same plus --normalize (-14 LUFS), against loudnorm=I=-14:TP=-1
#                 appended to ffmpeg's filters (informational: ffmpeg's one-pass
#                 loudnorm upsamples to 192 kHz internally).
#
# Each run is measured with /usr/bin/time -f '%U %S %M': user + sys CPU seconds and peak
# RSS. Runs are interleaved (ours, ffmpeg, ours, ffmpeg, ...) so load drifts hit both
# sides; one untimed run of each side comes first. Both sides write a file in the same
# temporary directory; the previous output is deleted before every run so neither pays
# for truncating an old file. The report is a markdown table: medians per side, the
# median (and range) of the paired ratios ours_i / ffmpeg_i, peak RSS, and the Opus
# bitrate check on this music.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-${RUNS:-7}}"
bin="${BIN:-$root/target/release/rust-transcoder}"
input="${INPUT:-$root/bench-data/music.mp3}"
jobs="${JOBS:-pcm opus aac aac44}"
ffmpeg="${FFMPEG:-ffmpeg}"
duration_s=180

[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is required" >&2; exit 1; }
[[ -x "$bin" ]] || { echo "$bin not found: run cargo build --release" >&2; exit 1; }
[[ -s "$input" ]] || bash "$root/benches/make_bench_input.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/rt-compare.XXXXXX")"
trap 'rm -rf "$work"' EXIT
raw="$work/raw.tsv"
: >"$raw"

ff=("$ffmpeg" -nostdin -hide_banner -loglevel error -y -i "$input")

# Fills the arrays `ours` and `theirs` with the command lines of job $1, writing to
# $work/ours.$ext and $work/ffmpeg.$ext.
job_commands() {
    local o="$work/ours" f="$work/ffmpeg"
    case "$1" in
    pcm)
        ours=("$bin" transcode "$input" -o "$o.pcm" --format pcm --sample-rate 48000 --channels 2)
        theirs=("${ff[@]}" -f s16le -ar 48000 -ac 2 "$f.pcm") ;;
    opus)
        ours=("$bin" transcode "$input" -o "$o.opus" --format opus --channels 2 --bitrate 128)
        theirs=("${ff[@]}" -c:a libopus -b:a 128k -vbr constrained -compression_level 10 \
            -ar 48000 -ac 2 "$f.opus") ;;
    opus_fx)
        ours=("$bin" transcode "$input" -o "$o.opus" --format opus --channels 2 --bitrate 128 \
            --speed 1.25 --eq bass_boost --volume 1.5)
        theirs=("${ff[@]}" -af atempo=1.25,bass=g=6,volume=1.5 -c:a libopus -b:a 128k \
            -vbr constrained -compression_level 10 -ar 48000 -ac 2 "$f.opus") ;;
    opus_fx_norm)
        ours=("$bin" transcode "$input" -o "$o.opus" --format opus --channels 2 --bitrate 128 \
            --speed 1.25 --eq bass_boost --volume 1.5 --normalize)
        theirs=("${ff[@]}" -af atempo=1.25,bass=g=6,volume=1.5,loudnorm=I=-14:TP=-1 \
            -c:a libopus -b:a 128k -vbr constrained -compression_level 10 -ar 48000 -ac 2 \
            "$f.opus") ;;
    aac)
        ours=("$bin" transcode "$input" -o "$o.aac" --format aac --sample-rate 48000 --channels 2 --bitrate 128)
        theirs=("${ff[@]}" -c:a aac -b:a 128k -ar 48000 -ac 2 "$f.aac") ;;
    aac44)
        ours=("$bin" transcode "$input" -o "$o.aac44.aac" --format aac --sample-rate 44100 --channels 2 --bitrate 128)
        theirs=("${ff[@]}" -c:a aac -b:a 128k "$f.aac44.aac") ;;
    *) echo "unknown job $1" >&2; exit 1 ;;
    esac
}

# measure JOB SIDE CMD...: one timed run, appended to $raw as "job side run user sys rss_kib".
measure() {
    local job=$1 side=$2 run=$3
    shift 3
    rm -f "$work"/ours.* "$work"/ffmpeg.* 2>/dev/null || true
    /usr/bin/time -o "$work/time" -f '%U %S %M' "$@" >/dev/null
    read -r user sys rss <"$work/time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$job" "$side" "$run" "$user" "$sys" "$rss" | tee -a "$raw" >&2
}

declare -A ours_bytes ffmpeg_bytes
echo "job side run user_s sys_s peak_rss_kib" >&2
for job in $jobs; do
    job_commands "$job"
    "${ours[@]}" >/dev/null && "${theirs[@]}" >/dev/null  # untimed warm-up
    for ((i = 1; i <= runs; i++)); do
        measure "$job" ours "$i" "${ours[@]}"
        measure "$job" ffmpeg "$i" "${theirs[@]}"
    done
    # Keep the sizes of one output of each side (for the Opus bitrate check).
    "${ours[@]}" >/dev/null && "${theirs[@]}" >/dev/null
    ours_bytes[$job]=$(stat -c %s "$work"/ours.*)
    ffmpeg_bytes[$job]=$(stat -c %s "$work"/ffmpeg.*)
    rm -f "$work"/ours.* "$work"/ffmpeg.*
done

ffmpeg_version=$("$ffmpeg" -hide_banner -version | head -n1 | awk '{print $3}')
echo
echo "Input: $(basename "$input") (${duration_s} s, 44.1 kHz stereo MP3 192 kbit/s); $runs interleaved runs per side; ffmpeg $ffmpeg_version; $(nproc) cores."
echo
python3 - "$raw" "$runs" <<'PY'
import statistics, sys
from collections import defaultdict

raw, runs = sys.argv[1], int(sys.argv[2])
cpu = defaultdict(dict)   # (job, side) -> {run: cpu seconds}
rss = defaultdict(list)   # (job, side) -> [KiB]
for line in open(raw):
    job, side, run, user, sys_s, rss_kib = line.split()
    cpu[(job, side)][int(run)] = float(user) + float(sys_s)
    rss[(job, side)].append(int(rss_kib))

labels = {
    "pcm": ("PCM s16le 48 kHz stereo", "-f s16le -ar 48000 -ac 2", 0.5),
    "opus": ("Ogg Opus 128k (constrained VBR, complexity 10)", "libopus", 0.85),
    "aac": ("AAC-LC 128k 48 kHz (fdk-aac vs ffmpeg aac)", "-c:a aac", 0.35),
    "aac44": ("AAC-LC 128k 44.1 kHz, no resampling (extra)", "-c:a aac", None),
    "opus_fx": ("Ogg Opus 128k + speed 1.25, bass_boost, volume 1.5", "atempo,bass,volume", 0.6),
    "opus_fx_norm": ("Ogg Opus 128k + the same + normalize -14 (vs loudnorm; informational)", "loudnorm", None),
}
print("| Job | ours CPU s (median) | ffmpeg CPU s (median) | paired ratio ours/ffmpeg: median (min-max) | ours peak RSS MiB | ffmpeg peak RSS MiB | target | met |")
print("|---|---:|---:|---:|---:|---:|---:|:---:|")
for job in dict.fromkeys(j for j, _ in cpu):
    ours, theirs = cpu[(job, "ours")], cpu[(job, "ffmpeg")]
    ratios = [ours[r] / theirs[r] for r in sorted(ours) if theirs.get(r)]
    med_ratio = statistics.median(ratios)
    name, _, target = labels[job]
    rss_ours = max(rss[(job, "ours")]) / 1024
    rss_ff = max(rss[(job, "ffmpeg")]) / 1024
    met = "-" if target is None else ("yes" if med_ratio <= target else "no")
    target_s = "-" if target is None else f"<= {target}x"
    print(f"| {name} | {statistics.median(ours.values()):.2f} | {statistics.median(theirs.values()):.2f} "
          f"| **{med_ratio:.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) "
          f"| {rss_ours:.1f} | {rss_ff:.1f} | {target_s} | {met} |")
print()
print("CPU = user + sys seconds for the whole process; peak RSS = max over runs of /usr/bin/time %M.")
PY

if [[ " $jobs " == *" opus "* ]]; then
    echo
    python3 - "${ours_bytes[opus]}" "${ffmpeg_bytes[opus]}" "$duration_s" <<'PY'
import sys
ours, theirs, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
kbps = lambda size: size * 8 / secs / 1000
o, f = kbps(ours), kbps(theirs)
ok = abs(o - 128) <= 12.8
print("Opus bitrate on this music (file size x 8 / 180 s), requested 128 kbit/s:")
print()
print("| Side | bytes | kbit/s | vs 128 |")
print("|---|---:|---:|---:|")
print(f"| ours | {ours} | {o:.1f} | {100 * (o / 128 - 1):+.1f} % |")
print(f"| ffmpeg libopus | {theirs} | {f:.1f} | {100 * (f / 128 - 1):+.1f} % |")
print()
print(f"Ours within 10 % of 128 kbit/s: {'yes' if ok else 'NO'}")
PY
fi
