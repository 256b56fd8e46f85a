//! Bytes as ha.cf, haresources and authkeys (NUL-separated) through the importer (body: fuzz/bodies.rs).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::import(data));
