//! cargo-fuzz target `cef_syslog`: the oracle in fuzz/oracles/cef_syslog.rs (also replayed over the
//! committed corpus by tests/fuzz_corpus.rs).
#![no_main]

#[path = "../oracles/cef_syslog.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::run(data));
