#![no_main]
//! Fuzz target `chain_file`: see [`chain_tui_fuzz::chain_file`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("chain_file"), |data: &[u8]| {
    chain_tui_fuzz::chain_file(data)
});
