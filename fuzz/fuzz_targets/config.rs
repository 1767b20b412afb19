//! cargo-fuzz target `config`: the oracle in fuzz/oracles/config.rs (also replayed over the
//! committed corpus by tests/fuzz_corpus.rs).
#![no_main]

#[path = "../oracles/config.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::run(data));
