//! Received events as the CEF oracles read them: every message a receiver stored, parsed by
//! liblognorm's `lognormalizer` and by PyPI `cefp`, which must both accept it and agree on the
//! fields kept here. Include it next to `harness.rs` (as module `harness` of the same crate).

#![allow(dead_code)]

use super::harness::{Receiver, Tools};
use std::path::Path;

/// One received event, with the fields both CEF oracles agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    /// `cs6`, the event id (the dedupe key).
    pub event_id: String,
    /// `externalId`, the instance fingerprint.
    pub instance: String,
    /// `act`: `new` or `resolved`.
    pub action: String,
    /// `cs2`, the finding id.
    pub finding: String,
    /// `cs3`, the resource id.
    pub resource_id: String,
    /// `rt`, when the scan that detected it started (Unix ms).
    pub detected_ms: i64,
}

/// Parses every received message with lognormalizer and cefp; both must agree.
pub fn arrived(tools: &Tools, dir: &Path, receiver: &Receiver) -> Vec<Arrived> {
    let lines: Vec<String> = receiver.received().into_iter().map(|r| r.msg).collect();
    let by_lognorm = super::harness::parse_lognormalizer(tools, dir, &lines);
    let by_cefp = super::harness::parse_cefp(tools, &lines);
    assert_eq!(by_lognorm.len(), lines.len());
    assert_eq!(by_cefp.len(), lines.len());
    let mut out = Vec::new();
    for ((line, lognorm), cefp) in lines.iter().zip(by_lognorm).zip(by_cefp) {
        let (lognorm, cefp) = (
            lognorm.unwrap_or_else(|e| panic!("lognormalizer: {e}: {line}")),
            cefp.unwrap_or_else(|e| panic!("cefp: {e}: {line}")),
        );
        let field = |key: &str| {
            let value = lognorm.get(key).unwrap_or_else(|| panic!("{key}: {line}"));
            assert_eq!(
                Some(value),
                cefp.get(key),
                "oracles disagree on {key}: {line}"
            );
            value.clone()
        };
        let (finding, action) = (field("cs2"), field("act"));
        assert_eq!(field("header.4"), format!("{finding}:{action}"));
        out.push(Arrived {
            event_id: field("cs6"),
            instance: field("externalId"),
            action,
            finding,
            resource_id: field("cs3"),
            detected_ms: field("rt")
                .parse()
                .unwrap_or_else(|e| panic!("rt: {e}: {line}")),
        });
    }
    out
}
