#![no_main]
//! Fuzz target `api_bodies`: see [`chain_tui_fuzz::api_bodies`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("api_bodies"), |data: &[u8]| {
    chain_tui_fuzz::api_bodies(data)
});
