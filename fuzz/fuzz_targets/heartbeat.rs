//! Arbitrary bytes as a Heartbeat 3.0.6 datagram (body: fuzz/bodies.rs).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::heartbeat(data));
