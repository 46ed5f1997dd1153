#![no_main]
//! Fuzz target `request_token`: see `gongwen::fuzzing::request_token` for what the bytes mean and which properties are checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gongwen::fuzzing::request_token(data));
