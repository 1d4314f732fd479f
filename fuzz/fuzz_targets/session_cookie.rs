#![no_main]
//! Fuzz target `session_cookie`: the property in `coderflow::fuzz_checks::session_cookie`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coderflow::fuzz_checks::session_cookie(data));
