//! cargo-fuzz target `spf_record`: the oracle in fuzz/oracles/spf_record.rs (also replayed over the
//! committed corpus by tests/fuzz_corpus.rs).
#![no_main]

#[path = "../oracles/spf_record.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::run(data));
