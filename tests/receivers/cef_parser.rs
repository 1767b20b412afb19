//! A strict CEF parser for tests: the header is split at unescaped `|` (only `\\` and `\|` are
//! valid escapes there), extensions at unescaped `=` with key lookahead (a value ends at a space
//! followed by `key=`; only `\\`, `\=`, `\n`, `\r` are valid escapes). It rejects raw CR, LF and
//! TAB anywhere, an unescaped `=` inside a value, unknown escapes, duplicate keys, and a value
//! with a trailing space (parsers keep it, so the encoder must trim).

#![allow(dead_code)]

use std::collections::BTreeMap;

/// A parsed CEF line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cef {
    /// Version, vendor, product, device version, class id, name, severity (unescaped).
    pub header: Vec<String>,
    /// Extension pairs (unescaped values).
    pub extensions: BTreeMap<String, String>,
    /// Extension keys in line order.
    pub order: Vec<String>,
}

pub fn parse(line: &str) -> Result<Cef, String> {
    if line.contains(['\r', '\n', '\t']) {
        return Err("raw CR, LF or TAB".into());
    }
    let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '|'))) => field.push(e),
                other => return Err(format!("bad header escape {other:?} at {i}")),
            },
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext_start = ext_start.ok_or("fewer than seven header fields")?;
    let (extensions, order) = parse_extensions(&rest[ext_start..])?;
    Ok(Cef {
        header,
        extensions,
        order,
    })
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Length of `key=` at the start of `s`, if `s` starts with one.
fn key_ahead(s: &str) -> Option<usize> {
    let key_len = s.chars().take_while(|c| is_key_char(*c)).count();
    (key_len > 0 && s[key_len..].starts_with('=')).then_some(key_len)
}

fn parse_extensions(s: &str) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let mut map = BTreeMap::new();
    let mut order = Vec::new();
    let mut pos = 0;
    if s.is_empty() {
        return Ok((map, order));
    }
    loop {
        let key_len =
            key_ahead(&s[pos..]).ok_or_else(|| format!("no key at {pos}: {:?}", &s[pos..]))?;
        let key = s[pos..pos + key_len].to_owned();
        pos += key_len + 1;
        let mut value = String::new();
        let mut end = true;
        let mut iter = s[pos..].char_indices();
        while let Some((i, c)) = iter.next() {
            match c {
                '\\' => match iter.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '=')) => value.push('='),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 'r')) => value.push('\r'),
                    other => return Err(format!("bad extension escape {other:?} in {key}")),
                },
                '=' => return Err(format!("unescaped = in value of {key}")),
                ' ' if key_ahead(&s[pos + i + 1..]).is_some() => {
                    pos += i + 1;
                    end = false;
                    break;
                }
                c => value.push(c),
            }
        }
        if value.ends_with(' ') || value.starts_with(' ') {
            return Err(format!("untrimmed value of {key}: {value:?}"));
        }
        if map.insert(key.clone(), value).is_some() {
            return Err(format!("duplicate key {key}"));
        }
        order.push(key);
        if end {
            return Ok((map, order));
        }
    }
}

/// Unescaped header fields and extensions as one map: `header.0` .. `header.6` plus the keys.
pub fn flatten(cef: &Cef) -> BTreeMap<String, String> {
    let mut all = cef.extensions.clone();
    for (i, value) in cef.header.iter().enumerate() {
        all.insert(format!("header.{i}"), value.clone());
    }
    all
}
