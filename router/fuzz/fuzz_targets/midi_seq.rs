//! Fuzzes the SPA sequence reader (what a MIDI peer would parse): never a panic, errors name
//! an offset inside the buffer.
#![no_main]

use khorus_router::seq;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = seq::read(data) {
        assert!(e.offset <= data.len() + 16);
    }
});
