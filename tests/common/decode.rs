//! Independent decoding of audio files: ffprobe for stream parameters, ffmpeg
//! for samples, and a direct reader for raw s16le PCM.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Decoded audio as one plane of f32 samples per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels (equals `planes.len()`).
    pub channels: usize,
    /// One vector of samples per channel, all of the same length.
    pub planes: Vec<Vec<f32>>,
}

impl Decoded {
    /// Splits interleaved samples into planes. Trailing samples that do not
    /// make up a whole frame are dropped.
    pub fn from_interleaved(samples: &[f32], sample_rate: u32, channels: usize) -> Self {
        assert!(channels > 0, "channel count must be positive");
        let frames = samples.len() / channels;
        let planes = (0..channels)
            .map(|c| (0..frames).map(|f| samples[f * channels + c]).collect())
            .collect();
        Self {
            sample_rate,
            channels,
            planes,
        }
    }

    /// Number of sample frames.
    pub fn frames(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }

    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

/// Stream and container parameters of the first audio stream, as ffprobe sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// ffmpeg codec name, e.g. `opus`, `aac`, `pcm_s16le`.
    pub codec_name: String,
    /// Codec profile when ffprobe reports one (e.g. `LC` for AAC).
    pub profile: Option<String>,
    /// Container name(s), e.g. `ogg`, `aac`, `wav`, `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels.
    pub channels: usize,
    /// Channel layout name, e.g. `stereo`, `5.1`.
    pub channel_layout: Option<String>,
    /// Stream duration in seconds, when the container states one.
    pub duration_secs: Option<f64>,
}

/// Runs ffprobe on `path`; panics if ffprobe fails or finds no audio stream.
pub fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .arg("stream=codec_name,profile,sample_rate,channels,channel_layout,duration:format=format_name")
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("codec_name="),
        "ffprobe found no audio stream in {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    probe_from_text(&text)
}

fn probe_from_text(text: &str) -> Probe {
    let fields: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(_, v)| *v != "N/A" && *v != "unknown")
        .collect();
    let get = |key: &str| fields.get(key).map(|v| (*v).to_owned());
    let num = |key: &str| get(key).and_then(|v| v.parse::<f64>().ok());
    Probe {
        codec_name: get("codec_name").unwrap_or_default(),
        profile: get("profile"),
        format_name: get("format_name").unwrap_or_default(),
        sample_rate: num("sample_rate").unwrap_or(0.0) as u32,
        channels: num("channels").unwrap_or(0.0) as usize,
        channel_layout: get("channel_layout"),
        duration_secs: num("duration"),
    }
}

/// Decodes the first audio stream of `path` with ffmpeg at its native rate and
/// channel count (no resampling, no remixing). Panics if ffmpeg exits non-zero
/// or reports any decoding error, so a decoded file is also a clean file.
pub fn decode_file(path: &Path) -> Decoded {
    ffmpeg_decode(path, None, true)
}

/// Like [`decode_file`], but resampled by ffmpeg (swresample, default settings)
/// to `rate`: the reference for a resampled output of ours.
pub fn decode_file_resampled(path: &Path, rate: u32) -> Decoded {
    ffmpeg_decode(path, Some(rate), true)
}

/// Decodes a damaged file (e.g. one cut short) with ffmpeg at its native rate:
/// decoding errors are tolerated, only a failing exit status panics. What
/// ffmpeg makes of the damaged file is the reference for what we make of it.
pub fn decode_file_lenient(path: &Path) -> Decoded {
    ffmpeg_decode(path, None, false)
}

/// Decodes `path` with ffmpeg to f32 at its native channel count, resampled to
/// `rate` when given; `strict` also fails on any error ffmpeg reports.
fn ffmpeg_decode(path: &Path, rate: Option<u32>, strict: bool) -> Decoded {
    let params = probe(path);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0"]);
    if let Some(rate) = rate {
        cmd.args(["-ar", &rate.to_string()]);
    }
    let out = cmd
        .args(["-f", "f32le", "-acodec", "pcm_f32le", "-"])
        .output()
        .expect("ffmpeg must be installed");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && (!strict || errors.trim().is_empty()),
        "ffmpeg could not {}decode {}: {}",
        if strict { "cleanly " } else { "" },
        path.display(),
        errors.trim()
    );
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Decoded::from_interleaved(
        &samples,
        rate.unwrap_or(params.sample_rate),
        params.channels,
    )
}

/// The largest number of sample frames in one of the first packets of `path`'s
/// first audio stream, per ffprobe: the codec's frame (MP3: 1152) or block
/// (FLAC: the encoder's block size) length.
pub fn packet_frames(path: &Path) -> usize {
    let rate = f64::from(probe(path).sample_rate);
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-read_intervals",
            "%+#8",
        ])
        .args(["-show_entries", "packet=duration_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = text
        .lines()
        .filter_map(|line| line.trim().trim_end_matches(',').parse::<f64>().ok())
        .map(|secs| (secs * rate).round() as usize)
        .max();
    frames.unwrap_or_else(|| panic!("ffprobe lists no packets in {}: {text}", path.display()))
}

/// Reads raw interleaved signed 16-bit little-endian PCM. Panics if the file
/// does not hold a whole number of frames.
pub fn decode_raw_pcm(path: &Path, sample_rate: u32, channels: usize) -> Decoded {
    let bytes = std::fs::read(path).unwrap();
    let frame_bytes = 2 * channels;
    assert!(
        bytes.len().is_multiple_of(frame_bytes),
        "{}: {} bytes is not a whole number of {channels}-channel s16 frames",
        path.display(),
        bytes.len()
    );
    let samples: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    Decoded::from_interleaved(&samples, sample_rate, channels)
}
