#![no_main]
//! Fuzz target `block`: see [`chain_tui_fuzz::block`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("block"), |data: &[u8]| {
    chain_tui_fuzz::block(data)
});
