//! Feeds arbitrary bytes to the decoder: it must return errors, never panic, hang or
//! allocate from header-declared sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rust_transcoder::decode::decode_all(data.to_vec());
});
