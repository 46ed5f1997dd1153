#![no_main]
//! Fuzz target `envelope`: see `gongwen::fuzzing::envelope` for what the bytes mean and which properties are checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gongwen::fuzzing::envelope(data));
