#![no_main]
//! Fuzz target `node_file`: see [`chain_tui_fuzz::node_file`].

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chain_tui_fuzz::seeds::write_if_asked("node_file"), |data: &[u8]| {
    chain_tui_fuzz::node_file(data)
});
