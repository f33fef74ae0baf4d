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

use super::pcm::to_s16;
use super::{EncodeError, Encoder, OutputSpec, interleave};

/// Sample rates AAC-LC can signal in ADTS (8 to 96 kHz).
pub(super) const SAMPLE_RATES_HZ: [u32; 12] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 64_000, 88_200, 96_000,
];

/// Encodes interleaved s16 audio into ADTS frames, constant bitrate.
pub struct AacEncoder {
    handle: FdkHandle,
    samples: Vec<i16>,
    packet: Vec<u8>,
}

impl AacEncoder {
    /// Opens and configures libfdk-aac for `spec` (AAC-LC, CBR, ADTS, afterburner off).
    pub fn try_new(spec: &OutputSpec) -> Result<Self, EncodeError> {
        let handle = FdkHandle::open(spec.channels)?;
        let params = [
            (sys::AACENC_PARAM_AACENC_AOT, 2), // AAC-LC
            (sys::AACENC_PARAM_AACENC_SAMPLERATE, spec.sample_rate_hz),
            (sys::AACENC_PARAM_AACENC_CHANNELMODE, spec.channels as u32),
            (sys::AACENC_PARAM_AACENC_CHANNELORDER, 1), // WAV order: L, R
            (sys::AACENC_PARAM_AACENC_BITRATEMODE, 0),  // CBR
            (sys::AACENC_PARAM_AACENC_BITRATE, spec.bitrate_kbps * 1000),
            (sys::AACENC_PARAM_AACENC_TRANSMUX, 2),    // ADTS
            (sys::AACENC_PARAM_AACENC_AFTERBURNER, 0), // see the module doc
        ];
        for (param, value) in params {
            handle.set(param, value)?;
        }
        handle.initialise()?;
        let max_out = handle.max_output_bytes()?;
        Ok(Self {
            handle,
            samples: Vec::new(),
            packet: vec![0; max_out],
        })
    }
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
        let count = i32::try_from(input.len()).unwrap_or(i32::MAX);
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
        let mut in_ptr = input.cast::<c_void>();
        let mut in_id = sys::AACENC_BufferIdentifier_IN_AUDIO_DATA as i32;
        let mut in_size = count.max(0) * 2;
        let mut in_el_size = 2;
        let in_desc = sys::AACENC_BufDesc {
            numBufs: 1,
            bufs: &mut in_ptr,
            bufferIdentifiers: &mut in_id,
            bufSizes: &mut in_size,
            bufElSizes: &mut in_el_size,
        };
        let mut out_ptr = output.as_mut_ptr().cast::<c_void>();
        let mut out_id = sys::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA as i32;
        let mut out_size = i32::try_from(output.len()).unwrap_or(i32::MAX);
        let mut out_el_size = 1;
        let out_desc = sys::AACENC_BufDesc {
            numBufs: 1,
            bufs: &mut out_ptr,
            bufferIdentifiers: &mut out_id,
            bufSizes: &mut out_size,
            bufElSizes: &mut out_el_size,
        };
        let in_args = sys::AACENC_InArgs {
            numInSamples: count,
            numAncBytes: 0,
        };
        // SAFETY: plain-data struct, fully written by aacEncEncode on success.
        let mut out_args: sys::AACENC_OutArgs = unsafe { mem::zeroed() };
        // SAFETY: every descriptor points at live locals or at `input`/`output`, whose
        // sizes are given in bytes; libfdk-aac reads at most `count` samples.
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
            format: super::super::OutputFormat::Aac,
            ..OutputSpec::default()
        };
        let mut encoder = AacEncoder::try_new(&spec).unwrap();
        let mut out = Vec::new();
        encoder.write(&Block::silence(2, 100), &mut out).unwrap();
        assert!(out.is_empty(), "100 frames are less than one AAC frame");
        encoder.finish(&mut out).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xF1], "ADTS sync word, MPEG-4, no CRC");
    }

    #[test]
    fn rejects_an_unusable_configuration() {
        let spec = OutputSpec {
            format: super::super::OutputFormat::Aac,
            sample_rate_hz: 7_000,
            ..OutputSpec::default()
        };
        assert!(AacEncoder::try_new(&spec).is_err());
    }
}
