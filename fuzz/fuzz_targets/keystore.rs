#![no_main]
//! Fuzz target `keystore`: see [`chain_tui_fuzz::keystore`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("keystore"), |data: &[u8]| {
    chain_tui_fuzz::keystore(data)
});
