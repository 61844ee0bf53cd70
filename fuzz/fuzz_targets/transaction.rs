#![no_main]
//! Fuzz target `transaction`: see [`chain_tui_fuzz::transaction`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("transaction"), |data: &[u8]| {
    chain_tui_fuzz::transaction(data)
});
