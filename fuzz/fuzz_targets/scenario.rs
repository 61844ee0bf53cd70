#![no_main]
//! Fuzz target `scenario`: see [`chain_tui_fuzz::scenario`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("scenario"), |data: &[u8]| {
    chain_tui_fuzz::scenario(data)
});
