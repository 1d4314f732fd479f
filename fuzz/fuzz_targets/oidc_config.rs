#![no_main]
//! Fuzz target `oidc_config`: the property in `coderflow::fuzz_checks::oidc_config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coderflow::fuzz_checks::oidc_config(data));
