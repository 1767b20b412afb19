//! Config parsing: the TOML config and the `--web.config.file` YAML. Any text gets a value or
//! an error that names a problem, never a panic.

use m365_posture::config::from_toml_str;
use m365_posture::sinks::web_config::WebConfig;
use std::path::Path;

/// One input: panics (assertion failures included) are the findings.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(err) = from_toml_str(&text) {
        assert!(
            !err.to_string().trim().is_empty(),
            "config error names no problem"
        );
    }
    let _ = WebConfig::parse(&text, Path::new("/nonexistent/web.yml"));
}
