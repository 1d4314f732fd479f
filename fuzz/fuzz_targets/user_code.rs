#![no_main]
//! Fuzz target `user_code`: the property in `coderflow::fuzz_checks::user_code`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coderflow::fuzz_checks::user_code(data));
