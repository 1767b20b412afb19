//! Field-level parsers shared by validation: names, GUIDs, URLs, durations, timestamps.
//!
//! Each takes the key path and the text, records a problem on failure and returns `None`.
//! Messages say what is expected and quote what was given (never a file's contents).

use super::error::Problems;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Reports the second and later uses of a name among `section[i].name`.
pub(crate) fn report_duplicates(
    section: &str,
    what: &str,
    names: &[Option<&str>],
    p: &mut Problems,
) {
    for (index, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        let first = names
            .iter()
            .position(|other| other.as_deref() == Some(name));
        if let Some(first) = first.filter(|first| *first < index) {
            p.push(
                format!("{section}[{index}].name"),
                format!("duplicate {what} name {name:?} (also {section}[{first}])"),
            );
        }
    }
}

pub(crate) fn required<'a>(
    path: &str,
    value: Option<&'a str>,
    p: &mut Problems,
) -> Option<&'a str> {
    if value.is_none() {
        p.push(path, "required");
    }
    value
}

pub(crate) fn non_blank(
    path: &str,
    value: Option<&str>,
    hint: &str,
    p: &mut Problems,
) -> Option<String> {
    match value {
        Some(text) if !text.trim().is_empty() => Some(text.to_owned()),
        Some(_) => {
            p.push(path, format!("must not be empty: {hint}"));
            None
        }
        None => {
            p.push(path, format!("required: {hint}"));
            None
        }
    }
}

/// A tenant or sink name: used on `--tenant`, in metric labels and in CEF.
pub(crate) fn name(path: &str, text: &str, p: &mut Problems) -> Option<String> {
    let mut chars = text.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && text.len() <= 64;
    if !valid {
        p.push(path, format!("must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, got {text:?}"));
        return None;
    }
    Some(text.to_owned())
}

pub(crate) fn guid(path: &str, text: &str, p: &mut Problems) -> Option<String> {
    let valid = text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !valid {
        p.push(path, format!("must be a GUID, got {text:?}"));
        return None;
    }
    Some(text.to_ascii_lowercase())
}

/// An `http(s)` base URL without trailing slash; plain http only for loopback hosts.
pub(crate) fn base_url(path: &str, text: &str, p: &mut Problems) -> Option<String> {
    let url = match reqwest::Url::parse(text) {
        Ok(url) => url,
        Err(err) => {
            p.push(
                path,
                format!("must be an https:// URL, got {text:?}: {err}"),
            );
            return None;
        }
    };
    let problem = match url.scheme() {
        "https" => None,
        "http" if is_loopback_host(url.host_str().unwrap_or_default()) => None,
        "http" => Some(format!("http:// is only allowed for loopback hosts (127.0.0.1, [::1], localhost), use https://, got {text:?}")),
        _ => Some(format!("must start with https:// (or http:// for a loopback host), got {text:?}")),
    };
    let problem = problem.or_else(|| {
        (url.query().is_some() || url.fragment().is_some())
            .then(|| format!("must not have a query or fragment, got {text:?}"))
    });
    match problem {
        Some(message) => {
            p.push(path, message);
            None
        }
        None => Some(text.trim_end_matches('/').to_owned()),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn file_path(path: &str, file: &Path, p: &mut Problems) -> Option<PathBuf> {
    if file.as_os_str().is_empty() {
        p.push(path, "must not be empty");
        return None;
    }
    Some(file.to_path_buf())
}

pub(crate) fn duration(path: &str, text: &str, p: &mut Problems) -> Option<Duration> {
    match humantime::parse_duration(text) {
        Ok(duration) => Some(duration),
        Err(_) => {
            p.push(
                path,
                format!("must be a duration like \"6h\", \"30m\" or \"90s\", got {text:?}"),
            );
            None
        }
    }
}

pub(crate) fn positive_duration(path: &str, text: &str, p: &mut Problems) -> Option<Duration> {
    let value = duration(path, text, p)?;
    if value.is_zero() {
        p.push(path, "must be greater than 0");
        return None;
    }
    Some(value)
}

/// One file of a pair that must be set together (certificate and key).
pub(crate) fn paired_file(
    path: &str,
    key: &str,
    value: Option<&PathBuf>,
    partner: &str,
    p: &mut Problems,
) -> Option<PathBuf> {
    let key_path = format!("{path}.{key}");
    match value {
        Some(file) => file_path(&key_path, file, p),
        None => {
            p.push(key_path, format!("required with {partner}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T>(parse: impl Fn(&str, &str, &mut Problems) -> Option<T>, text: &str) -> Vec<String> {
        let mut p = Problems::default();
        parse("k", text, &mut p);
        p.into_vec().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn guids_need_the_hyphenated_form() {
        assert!(check(guid, "0A000000-0000-0000-0000-00000000000f").is_empty());
        assert_eq!(check(guid, "abc"), ["k: must be a GUID, got \"abc\""]);
        assert_eq!(
            check(guid, "{00000000-0000-0000-0000-000000000000}").len(),
            1
        );
        let mut p = Problems::default();
        assert_eq!(
            guid("k", "0A000000-0000-0000-0000-00000000000F", &mut p).as_deref(),
            Some("0a000000-0000-0000-0000-00000000000f")
        );
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for good in [
            "https://graph.microsoft.com",
            "http://127.0.0.1:8080",
            "http://[::1]:8080/",
            "http://localhost:1",
        ] {
            assert!(check(base_url, good).is_empty(), "{good}");
        }
        assert_eq!(
            check(base_url, "http://graph.example.com"),
            ["k: http:// is only allowed for loopback hosts (127.0.0.1, [::1], localhost), use https://, got \"http://graph.example.com\""]
        );
        assert_eq!(check(base_url, "ftp://x").len(), 1);
        assert_eq!(check(base_url, "https://x/?a=1").len(), 1);
        let mut p = Problems::default();
        assert_eq!(
            base_url("k", "http://127.0.0.1:9/", &mut p).as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn durations_are_humantime_and_positive_where_asked() {
        assert!(check(duration, "0s").is_empty());
        assert_eq!(
            check(positive_duration, "0s"),
            ["k: must be greater than 0"]
        );
        assert_eq!(
            check(duration, "6 hourz"),
            ["k: must be a duration like \"6h\", \"30m\" or \"90s\", got \"6 hourz\""]
        );
    }

    #[test]
    fn names_are_label_safe() {
        assert!(check(name, "contoso-eu.1").is_empty());
        assert_eq!(check(name, "").len(), 1);
        assert_eq!(check(name, "-x").len(), 1);
        assert_eq!(check(name, "a b").len(), 1);
    }
}
