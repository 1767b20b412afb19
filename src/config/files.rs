//! The one impure validation step: credential and TLS files named in the config exist and
//! can be opened by this process. Reports paths only, never reads or shows contents.

use super::error::{ConfigProblem, Problems};
use super::raw::RawConfig;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Checks every file the config names (tenant secrets, certificates and keys, sink TLS files).
pub fn check_files(raw: &RawConfig) -> Vec<ConfigProblem> {
    let mut p = Problems::default();
    for (key_path, file) in named_files(raw) {
        if let Err(message) = readable(&file) {
            p.push(key_path, message);
        }
    }
    p.into_vec()
}

fn named_files(raw: &RawConfig) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for (index, tenant) in raw.tenants.iter().enumerate() {
        for (key, file) in [
            ("client_secret_file", &tenant.client_secret_file),
            ("certificate_file", &tenant.certificate_file),
            ("private_key_file", &tenant.private_key_file),
        ] {
            if let Some(file) = file {
                files.push((format!("tenants[{index}].{key}"), file.clone()));
            }
        }
    }
    for (index, sink) in raw.sinks.iter().enumerate() {
        let Some(tls) = &sink.tls else { continue };
        for (key, file) in [
            ("ca_file", &tls.ca_file),
            ("client_certificate_file", &tls.client_certificate_file),
            ("client_key_file", &tls.client_key_file),
        ] {
            if let Some(file) = file {
                files.push((format!("sinks[{index}].tls.{key}"), file.clone()));
            }
        }
    }
    files.retain(|(_, file)| !file.as_os_str().is_empty());
    files
}

fn readable(file: &Path) -> Result<(), String> {
    let shown = file.display();
    match std::fs::metadata(file) {
        Ok(meta) if !meta.is_file() => return Err(format!("{shown} is not a regular file")),
        Ok(_) => {}
        Err(err) => return Err(format!("cannot read {shown}: {}", io_reason(&err))),
    }
    File::open(file)
        .map(drop)
        .map_err(|err| format!("cannot read {shown}: {}", io_reason(&err)))
}

/// The OS reason without the `(os error N)` suffix, lowercase like every other message.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawTenant;

    #[test]
    fn missing_and_directory_paths_are_reported_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let raw = RawConfig {
            tenants: vec![
                RawTenant {
                    client_secret_file: Some(secret),
                    ..RawTenant::default()
                },
                RawTenant {
                    certificate_file: Some(dir.path().join("missing.pem")),
                    private_key_file: Some(dir.path().to_path_buf()),
                    ..RawTenant::default()
                },
            ],
            ..RawConfig::default()
        };
        let problems = check_files(&raw);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("tenants[1].certificate_file: cannot read "));
        assert!(lines[0].ends_with("missing.pem: no such file"));
        assert!(lines[1].ends_with("is not a regular file"));
        assert!(!lines.join("\n").contains("s3cret"));
    }
}
