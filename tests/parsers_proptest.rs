//! Property tests (where `cargo fuzz` needs a nightly toolchain this project does not use): the
//! config parser and the `--web.config.file` parser take arbitrary input, including mutations
//! of valid files, and answer with a value or an error, never a panic. A rejected config names
//! at least one problem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use m365_posture::config::from_toml_str;
use m365_posture::sinks::web_config::WebConfig;
use proptest::prelude::*;
use std::path::Path;

const EXAMPLE: &str = include_str!("../config/example.toml");
const WEB: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
                   client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
                   min_version: TLS13\nbasic_auth_users:\n  prometheus: \
                   '$2b$04$J8yo0EHcxBJO69NURdV7u.T2KIgLBvYgI4bd6a5X43JQOKHb2kzeG'\n";

/// `text` with one byte range replaced by `insert`: mutations that keep most of a valid file.
fn mutated(text: &'static str) -> impl Strategy<Value = String> {
    (0..text.len(), 0usize..40, "(?s).{0,40}").prop_map(move |(start, len, insert)| {
        let bytes = text.as_bytes();
        let end = (start + len).min(bytes.len());
        let mut out = bytes[..start].to_vec();
        out.extend_from_slice(insert.as_bytes());
        out.extend_from_slice(&bytes[end..]);
        String::from_utf8_lossy(&out).into_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn config_parser_never_panics_and_names_a_problem(text in prop_oneof![mutated(EXAMPLE), "(?s).{0,400}"]) {
        if let Err(err) = from_toml_str(&text) {
            prop_assert!(!err.to_string().trim().is_empty());
        }
    }

    #[test]
    fn web_config_parser_never_panics(text in prop_oneof![mutated(WEB), "(?s).{0,300}"]) {
        let _ = WebConfig::parse(&text, Path::new("/nonexistent/web.yml"));
    }
}
