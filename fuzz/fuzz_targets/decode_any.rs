//! Feeds arbitrary bytes to the decoder: it must return errors, never panic, hang or
//! allocate from header-declared sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The decoder contains panics of the parsers it calls (they become errors); the
        // fuzzer's own hook would abort on those, so only what escapes is a crash here.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let _ = rust_transcoder::decode::decode_all(data.to_vec());
    }
);
