//! AAC-LC in ADTS through libfdk-aac.
//!
//! The `fdk-aac` crate's safe encoder cannot flush, which loses the last partial frame,
//! so this module drives libfdk-aac through `fdk-aac-sys` directly: a handle that is
//! opened, configured, fed, flushed with `numInSamples = -1`, and closed on drop.
//!
//! The encoder's "afterburner" (an analysis-by-synthesis refinement) is off: it costs
//! about 70 % more CPU per stream for a small quality gain, and CPU per stream is what
//! this service is measured by.
#![allow(unsafe_code)] // FFI wrapper: every unsafe block is a call into libfdk-aac.

use std::ffi::c_void;
use std::{mem, ptr};

use dsp::Block;
use fdk_aac_sys as sys;

use super::{EncodeError, Encoder, OutputFormat, OutputSpec, interleave, to_s16};

/// Sample rates AAC-LC can signal in ADTS (8 to 96 kHz).
pub(super) const SAMPLE_RATES_HZ: [u32; 12] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 64_000, 88_200, 96_000,
];

/// How far the bitrate libfdk-aac settles on may stray from the request (5 %).
const BITRATE_TOLERANCE_DIVISOR: u32 = 20;

/// Most samples handed to one `aacEncEncode` call, so their size in bytes fits an `i32`.
const MAX_SAMPLES_PER_CALL: usize = (i32::MAX / 2) as usize;

/// Encodes interleaved s16 audio into ADTS frames, constant bitrate.
pub struct AacEncoder {
    handle: FdkHandle,
    samples: Vec<i16>,
    packet: Vec<u8>,
}

impl AacEncoder {
    /// Opens and configures libfdk-aac for `spec` (AAC-LC, CBR, ADTS, afterburner off).
    ///
    /// Fails with `InvalidSpec` when `spec` is invalid or when libfdk-aac cannot keep
    /// the requested bitrate (within 5 %) at this sample rate and channel count.
    pub fn try_new(spec: &OutputSpec) -> Result<Self, EncodeError> {
        spec.validate()?;
        let requested_bps = spec.bitrate_kbps.saturating_mul(1000);
        let handle = FdkHandle::configure(spec, requested_bps)?;
        let chosen_bps = handle.get(sys::AACENC_PARAM_AACENC_BITRATE);
        if requested_bps.abs_diff(chosen_bps) > requested_bps / BITRATE_TOLERANCE_DIVISOR {
            return Err(bitrate_error(spec, chosen_bps));
        }
        let max_out = handle.max_output_bytes()?;
        Ok(Self {
            handle,
            samples: Vec::new(),
            packet: vec![0; max_out],
        })
    }
}

/// The error for a bitrate libfdk-aac would change to `chosen_bps`, naming the range it
/// accepts at this rate and channel count (found by asking it for the extremes).
fn bitrate_error(spec: &OutputSpec, chosen_bps: u32) -> EncodeError {
    let settle =
        |bps| FdkHandle::configure(spec, bps).map(|h| h.get(sys::AACENC_PARAM_AACENC_BITRATE));
    let api = OutputFormat::Aac
        .bitrate_range_kbps()
        .unwrap_or(0..=u32::MAX);
    let possible = match (settle(1), settle(u32::MAX / 2)) {
        (Ok(min), Ok(max)) => {
            let min = min.div_ceil(1000).max(*api.start());
            let max = (max / 1000).min(*api.end());
            format!(": use {min}..={max} kbps")
        }
        _ => String::new(),
    };
    EncodeError::InvalidSpec(format!(
        "bitrate_kbps = {} is not possible for AAC at {} Hz with {} channel(s), \
         libfdk-aac would encode at {} kbps{possible}",
        spec.bitrate_kbps,
        spec.sample_rate_hz,
        spec.channels,
        chosen_bps / 1000
    ))
}

impl Encoder for AacEncoder {
    fn write(&mut self, block: &Block, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.samples.clear();
        interleave(block, &mut self.samples, to_s16);
        let mut consumed = 0;
        while consumed < self.samples.len() {
            let step = self
                .handle
                .encode(&self.samples[consumed..], &mut self.packet)?;
            out.extend_from_slice(&self.packet[..step.output_bytes]);
            consumed += step.input_samples;
            if step.input_samples == 0 && step.output_bytes == 0 {
                return Err(codec_error("encoder made no progress"));
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        while let Some(bytes) = self.handle.flush(&mut self.packet)? {
            out.extend_from_slice(&self.packet[..bytes]);
        }
        Ok(())
    }
}

/// What one `aacEncEncode` call did.
struct EncodeStep {
    input_samples: usize,
    output_bytes: usize,
}

/// An open libfdk-aac encoder instance, closed on drop.
struct FdkHandle(sys::HANDLE_AACENCODER);

// SAFETY: the handle is owned exclusively by one `AacEncoder` and libfdk-aac keeps no
// thread-local state, so moving it to another thread is sound.
unsafe impl Send for FdkHandle {}

impl FdkHandle {
    /// Opens an encoder for `spec` at `bitrate_bps` and applies the parameters.
    fn configure(spec: &OutputSpec, bitrate_bps: u32) -> Result<Self, EncodeError> {
        let handle = FdkHandle::open(spec.channels)?;
        let params = [
            (sys::AACENC_PARAM_AACENC_AOT, 2), // AAC-LC
            (sys::AACENC_PARAM_AACENC_SAMPLERATE, spec.sample_rate_hz),
            (sys::AACENC_PARAM_AACENC_CHANNELMODE, spec.channels as u32),
            (sys::AACENC_PARAM_AACENC_CHANNELORDER, 1), // WAV order: L, R
            (sys::AACENC_PARAM_AACENC_BITRATEMODE, 0),  // CBR
            (sys::AACENC_PARAM_AACENC_BITRATE, bitrate_bps),
            (sys::AACENC_PARAM_AACENC_TRANSMUX, 2),    // ADTS
            (sys::AACENC_PARAM_AACENC_AFTERBURNER, 0), // see the module doc
        ];
        for (param, value) in params {
            handle.set(param, value)?;
        }
        handle.initialise()?;
        Ok(handle)
    }

    /// Opens an encoder for `channels` (1 or 2, checked by `OutputSpec::validate`).
    fn open(channels: usize) -> Result<Self, EncodeError> {
        let mut handle = ptr::null_mut();
        // SAFETY: `handle` is a valid out-pointer; 0 modules = all, channels <= 2.
        check(unsafe { sys::aacEncOpen(&mut handle, 0, channels as u32) })?;
        Ok(Self(handle))
    }

    fn set(&self, param: sys::AACENC_PARAM, value: u32) -> Result<(), EncodeError> {
        // SAFETY: the handle is open; libfdk-aac validates the parameter value.
        check(unsafe { sys::aacEncoder_SetParam(self.0, param, value) })
    }

    /// The current value of `param`; after `initialise`, what the encoder settled on.
    fn get(&self, param: sys::AACENC_PARAM) -> u32 {
        // SAFETY: the handle is open; GetParam only reads the encoder's configuration.
        unsafe { sys::aacEncoder_GetParam(self.0, param) }
    }

    /// Applies the parameters (the documented all-null call).
    fn initialise(&self) -> Result<(), EncodeError> {
        // SAFETY: null buffers are the documented way to initialise after SetParam.
        check(unsafe {
            sys::aacEncEncode(
                self.0,
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }

    fn max_output_bytes(&self) -> Result<usize, EncodeError> {
        // SAFETY: the info struct is plain data that aacEncInfo fills completely.
        let mut info: sys::AACENC_InfoStruct = unsafe { mem::zeroed() };
        // SAFETY: the handle is open and `info` is a valid out-pointer.
        check(unsafe { sys::aacEncInfo(self.0, &mut info) })?;
        Ok((info.maxOutBufBytes as usize).max(8192))
    }

    /// Feeds interleaved samples; returns how many were consumed and bytes produced.
    fn encode(&mut self, input: &[i16], output: &mut [u8]) -> Result<EncodeStep, EncodeError> {
        // At most `MAX_SAMPLES_PER_CALL` samples, so `count * 2` bytes fits an `i32`.
        let count = i32::try_from(input.len().min(MAX_SAMPLES_PER_CALL)).unwrap_or(0);
        self.call(input.as_ptr().cast_mut(), count, output)
            .map(|step| {
                step.unwrap_or(EncodeStep {
                    input_samples: 0,
                    output_bytes: 0,
                })
            })
    }

    /// Drains the encoder's delay line; `None` once everything has been written.
    fn flush(&mut self, output: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        Ok(self
            .call(ptr::null_mut(), -1, output)?
            .map(|step| step.output_bytes))
    }

    /// One `aacEncEncode` call; `None` when the encoder reports end of stream.
    fn call(
        &mut self,
        input: *mut i16,
        count: i32,
        output: &mut [u8],
    ) -> Result<Option<EncodeStep>, EncodeError> {
        let mut in_buf = Buffer::audio_in(input, count)?;
        let mut out_buf = Buffer::bitstream_out(output);
        let (in_desc, out_desc) = (in_buf.descriptor(), out_buf.descriptor());
        let in_args = sys::AACENC_InArgs {
            numInSamples: count,
            numAncBytes: 0,
        };
        // SAFETY: plain-data struct, fully written by aacEncEncode on success.
        let mut out_args: sys::AACENC_OutArgs = unsafe { mem::zeroed() };
        // SAFETY: the descriptors point at `in_buf` and `out_buf`, which live until after
        // the call, and those at `input`/`output`, whose sizes they give in bytes;
        // libfdk-aac reads at most `count` samples.
        let status =
            unsafe { sys::aacEncEncode(self.0, &in_desc, &out_desc, &in_args, &mut out_args) };
        if status == sys::AACENC_ERROR_AACENC_ENCODE_EOF {
            return Ok(None);
        }
        check(status)?;
        Ok(Some(EncodeStep {
            input_samples: usize::try_from(out_args.numInSamples).unwrap_or(0),
            output_bytes: usize::try_from(out_args.numOutBytes).unwrap_or(0),
        }))
    }
}

/// One buffer for `aacEncEncode`: the values an `AACENC_BufDesc` points at.
struct Buffer {
    data: *mut c_void,
    id: i32,
    size_bytes: i32,
    element_bytes: i32,
}

impl Buffer {
    /// `count` interleaved s16 samples at `input` (none for a flush, `count` = -1).
    fn audio_in(input: *mut i16, count: i32) -> Result<Self, EncodeError> {
        let size_bytes = count
            .max(0)
            .checked_mul(2)
            .ok_or_else(|| codec_error("too many samples for one call"))?;
        Ok(Self {
            data: input.cast(),
            id: sys::AACENC_BufferIdentifier_IN_AUDIO_DATA as i32,
            size_bytes,
            element_bytes: 2,
        })
    }

    /// `output` as the buffer for the ADTS bitstream.
    fn bitstream_out(output: &mut [u8]) -> Self {
        Self {
            data: output.as_mut_ptr().cast(),
            id: sys::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA as i32,
            size_bytes: i32::try_from(output.len()).unwrap_or(i32::MAX),
            element_bytes: 1,
        }
    }

    /// A one-buffer descriptor pointing into `self`: valid while `self` is not moved.
    fn descriptor(&mut self) -> sys::AACENC_BufDesc {
        sys::AACENC_BufDesc {
            numBufs: 1,
            bufs: &mut self.data,
            bufferIdentifiers: &mut self.id,
            bufSizes: &mut self.size_bytes,
            bufElSizes: &mut self.element_bytes,
        }
    }
}

impl Drop for FdkHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by aacEncOpen and is closed exactly once.
        unsafe {
            sys::aacEncClose(&mut self.0);
        }
    }
}

fn check(status: sys::AACENC_ERROR) -> Result<(), EncodeError> {
    if status == sys::AACENC_ERROR_AACENC_OK {
        Ok(())
    } else {
        Err(codec_error(format!("libfdk-aac error 0x{status:04x}")))
    }
}

fn codec_error(message: impl Into<String>) -> EncodeError {
    EncodeError::Codec {
        codec: "aac",
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_emits_the_last_partial_frame() {
        let spec = OutputSpec {
            format: OutputFormat::Aac,
            ..OutputSpec::default()
        };
        let mut encoder = AacEncoder::try_new(&spec).unwrap();
        let mut out = Vec::new();
        encoder.write(&Block::silence(2, 100), &mut out).unwrap();
        assert!(out.is_empty(), "100 frames are less than one AAC frame");
        encoder.finish(&mut out).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xF1], "ADTS sync word, MPEG-4, no CRC");
    }

    fn spec(sample_rate_hz: u32, channels: usize, bitrate_kbps: u32) -> OutputSpec {
        OutputSpec {
            format: OutputFormat::Aac,
            sample_rate_hz,
            channels,
            bitrate_kbps,
        }
    }

    fn invalid_spec_message(spec: &OutputSpec) -> String {
        match AacEncoder::try_new(spec) {
            Err(EncodeError::InvalidSpec(message)) => message,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("{spec:?} was accepted"),
        }
    }

    #[test]
    fn rejects_a_bitrate_too_high_for_the_rate() {
        let message = invalid_spec_message(&spec(8_000, 2, 320));
        assert!(message.contains("would encode at 96 kbps"), "{message}");
        assert!(message.contains("8..=96 kbps"), "{message}");
    }

    #[test]
    fn rejects_a_bitrate_too_low_for_the_rate() {
        let message = invalid_spec_message(&spec(96_000, 2, 8));
        assert!(message.contains("96000 Hz with 2 channel(s)"), "{message}");
        assert!(message.contains("would encode at 27 kbps"), "{message}");
        assert!(message.contains("27..=320 kbps"), "{message}");
    }

    #[test]
    fn accepts_bitrates_libfdk_keeps() {
        for (rate_hz, channels, kbps) in [(44_100, 2, 128), (48_000, 1, 64), (8_000, 1, 8)] {
            assert!(AacEncoder::try_new(&spec(rate_hz, channels, kbps)).is_ok());
        }
    }

    #[test]
    fn rejects_an_unusable_configuration() {
        let spec = spec(7_000, 2, 128);
        assert!(AacEncoder::try_new(&spec).is_err());
    }
}
