//! The fuzz targets' oracles (fuzz/oracles/, shared with the cargo-fuzz crate in fuzz/) run over
//! every committed input of fuzz/corpus/<target>/ in the normal test suite: the seeds, and the
//! input of every crash the fuzzers found (kept as `crash-*` files), so a fixed crash stays
//! fixed without a fuzzer. An oracle panics when its property fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)] // test code

#[path = "../fuzz/oracles/cef_syslog.rs"]
mod cef_syslog;
#[path = "../fuzz/oracles/config.rs"]
mod config;
#[path = "../fuzz/oracles/dmarc_record.rs"]
mod dmarc_record;
#[path = "../fuzz/oracles/graph_sections.rs"]
mod graph_sections;
#[path = "../fuzz/oracles/spf_record.rs"]
mod spf_record;

use std::path::Path;

/// Runs `oracle` on every file of `fuzz/corpus/<target>/`; there must be some.
fn replay(target: &str, oracle: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| oracle(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", path.display());
        inputs += 1;
    }
    assert!(
        inputs >= 3,
        "{target}: only {inputs} inputs in {}",
        dir.display()
    );
}

#[test]
fn spf_record_corpus_replays() {
    replay("spf_record", spf_record::run);
}

#[test]
fn dmarc_record_corpus_replays() {
    replay("dmarc_record", dmarc_record::run);
}

#[test]
fn graph_sections_corpus_replays() {
    replay("graph_sections", graph_sections::run);
}

#[test]
fn cef_syslog_corpus_replays() {
    replay("cef_syslog", cef_syslog::run);
}

#[test]
fn config_corpus_replays() {
    replay("config", config::run);
}
