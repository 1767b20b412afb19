//! cargo-fuzz target `graph_sections`: the oracle in fuzz/oracles/graph_sections.rs (also replayed over the
//! committed corpus by tests/fuzz_corpus.rs).
#![no_main]

#[path = "../oracles/graph_sections.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::run(data));
