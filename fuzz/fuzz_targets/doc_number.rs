#![no_main]
//! Fuzz target `doc_number`: see `gongwen::fuzzing::doc_number` for what the bytes mean and which properties are checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gongwen::fuzzing::doc_number(data));
