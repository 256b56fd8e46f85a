//! A program of signed, junk and replayed packets, time and events against a real core (body: fuzz/bodies.rs).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::packet(data));
