#![no_main]
//! Fuzz target `return_to`: the property in `coderflow::fuzz_checks::return_to`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coderflow::fuzz_checks::return_to(data));
