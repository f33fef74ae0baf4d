//! Panic containment for calls into third-party parsers: a panic on malformed data
//! becomes a `DecodeError`, and the panic hook stays quiet while a contained call runs.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::DecodeError;

thread_local! {
    /// Set while this thread runs a contained call, so the panic hook stays quiet.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs a call into a third-party parser, turning a panic (an overflow or bad index on
/// malformed data) into an error so that a hostile file cannot take the process down.
/// The panic is reported through the error, not printed by the panic hook.
pub(super) fn contain<T>(stage: &'static str, call: impl FnOnce() -> T) -> Result<T, DecodeError> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = CONTAINING.with(|flag| flag.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(call));
    CONTAINING.with(|flag| flag.set(outer));
    outcome.map_err(|payload| DecodeError::Crashed {
        stage,
        detail: payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parser_panic_becomes_an_error() {
        let outcome: Result<(), _> = contain("demuxer", || panic!("index out of bounds"));
        let Err(DecodeError::Crashed { stage, detail }) = outcome else {
            panic!("expected a contained crash, got {outcome:?}");
        };
        assert_eq!((stage, detail.as_str()), ("demuxer", "index out of bounds"));
    }
}
