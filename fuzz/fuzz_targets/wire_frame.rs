#![no_main]
//! Fuzz target `wire_frame`: see [`chain_tui_fuzz::wire_frame`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("wire_frame"), |data: &[u8]| {
    chain_tui_fuzz::wire_frame(data)
});
