//! Tests of CEF escaping, normalisation and shortening against their char-by-char definitions.

use super::*;

#[test]
fn escapes_follow_the_spec_table() {
    assert_eq!(escape_header(r"a\b|c=d"), r"a\\b\|c=d");
    assert_eq!(escape_header("x\r\ny\tz"), "x  y z");
    assert_eq!(escape_extension(r"C:\Temp a=b|c"), r"C:\\Temp a\=b|c");
    assert_eq!(escape_extension("l1\nl2\r\n"), r"l1\nl2\n");
    assert_eq!(escape_extension("a\r\rb\n\rc\r"), r"a\r\rb\n\rc\r");
    assert_eq!(escape_extension("  tab\there \u{0}  "), "tab here");
}

/// Escaping as first written (replace, trim, then escape char by char): the one-pass
/// versions with their plain-ASCII fast paths must give the same text.
fn reference_normalize(value: &str) -> String {
    let value = value.replace("\r\n", "\n");
    let replaced: String = value
        .chars()
        .map(|c| {
            if c.is_control() && c != '\r' && c != '\n' {
                ' '
            } else {
                c
            }
        })
        .collect();
    replaced.trim_matches(' ').to_owned()
}

fn reference_header(value: &str) -> String {
    let mut out = String::new();
    for c in value
        .trim_matches(|c: char| c == ' ' || c.is_control())
        .chars()
    {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[test]
fn one_pass_escaping_equals_the_char_by_char_definition() {
    let parts = [
        "",
        " ",
        "plain",
        "  padded  ",
        "a=b",
        "C:\\x",
        "p|q",
        "\t",
        "\u{0}",
        "\n",
        "\r\n",
        "é",
        "\u{85}",
        "\u{9f}x",
        "\u{7f}",
        " \u{1} ",
        "日本",
        "=",
    ];
    for a in parts {
        for b in parts {
            for c in ["", " ", "\t", "z"] {
                let value = format!("{a}{b}{c}");
                let normalized = reference_normalize(&value);
                let mut escaped = String::new();
                normalized
                    .chars()
                    .for_each(|ch| push_escaped(&mut escaped, ch));
                assert_eq!(normalize_extension(&value), normalized, "{value:?}");
                assert_eq!(escape_extension(&value), escaped, "{value:?}");
                assert_eq!(escape_header(&value), reference_header(&value), "{value:?}");
            }
        }
    }
}

/// A shortened value is a prefix of the whole one as a parser reads it back, whatever CRs
/// and LFs it holds, and its escaped form fits the budget.
#[test]
fn shortened_line_breaks_escape_as_in_the_whole_value() {
    let value = "a\r\r\nb\r\nc\rd\n\r\n\te=f";
    let whole = escape_extension(value);
    for budget in 0..60 {
        let short = shorten(value, budget);
        let escaped = escape_extension(&short);
        assert!(escaped.len() <= budget || escaped == whole, "{budget}");
        if let Some(kept) = escaped.strip_suffix(TRUNCATION_MARK) {
            assert!(whole.starts_with(kept), "{budget}: {kept:?} of {whole:?}");
        }
    }
}

#[test]
fn shorten_never_cuts_an_escape_or_a_character() {
    let value = "é=é=é=é=é=";
    for budget in 0..40 {
        let short = shorten(value, budget);
        let escaped = escape_extension(&short);
        assert!(escaped.len() <= budget || escaped == escape_extension(value));
        if !short.is_empty() && short != value {
            assert!(short.ends_with(TRUNCATION_MARK));
            assert!(!escaped.ends_with('\\') || escaped.ends_with("\\\\"));
        }
    }
}
