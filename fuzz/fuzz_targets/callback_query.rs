#![no_main]
//! Fuzz target `callback_query`: the property in `coderflow::fuzz_checks::callback_query`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coderflow::fuzz_checks::callback_query(data));
