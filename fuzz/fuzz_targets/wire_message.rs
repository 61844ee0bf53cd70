#![no_main]
//! Fuzz target `wire_message`: see [`chain_tui_fuzz::wire_message`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("wire_message"), |data: &[u8]| {
    chain_tui_fuzz::wire_message(data)
});
