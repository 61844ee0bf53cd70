#![no_main]
//! Fuzz target `header`: see [`chain_tui_fuzz::header`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("header"), |data: &[u8]| {
    chain_tui_fuzz::header(data)
});
