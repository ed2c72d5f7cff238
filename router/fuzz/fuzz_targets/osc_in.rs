//! Fuzzes the OSC control listener's decoder: no datagram may panic; a refusal always says
//! what was wrong.
#![no_main]

use khorus_router::osc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = osc::decode(data) {
        assert!(!e.to_string().is_empty());
    }
});
