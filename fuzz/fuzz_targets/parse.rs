#![no_main]
//! Fuzz target `parse`: see `gongwen::fuzzing::parse` for what the bytes mean and which properties are checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gongwen::fuzzing::parse(data));
