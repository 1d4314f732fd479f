#![no_main]
//! Fuzz target `api_key`: the property in `coderflow::fuzz_checks::api_key`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coderflow::fuzz_checks::api_key(data));
