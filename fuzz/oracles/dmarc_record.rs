//! DMARC: the record parser and the evaluation with the organizational-domain fallback take
//! attacker-written DNS text. Line 1 is the TXT record of `_dmarc.mail.example.com`; each
//! further line is `name record`. Parse and evaluation must answer, never panic.

use m365_posture::checks::dmarc;
use m365_posture::checks::spf::{normalize, TxtAnswer};
use std::collections::BTreeMap;

/// One input: panics (assertion failures included) are the findings.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let _ = dmarc::is_dmarc_record(first);
    let parsed = dmarc::parse(first);
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", dmarc::parse(first)),
        "parse is not deterministic"
    );
    let mut answers: BTreeMap<String, TxtAnswer> = BTreeMap::new();
    answers.insert("_dmarc.mail.example.com".into(), Ok(vec![first.to_owned()]));
    for line in lines {
        let _ = dmarc::parse(line);
        if let Some((name, record)) = line.split_once(' ') {
            if let Ok(list) = answers
                .entry(normalize(name))
                .or_insert_with(|| Ok(Vec::new()))
            {
                list.push(record.to_owned());
            }
        }
    }
    let lookup = |name: &str| answers.get(name);
    let verdict = dmarc::evaluate_dmarc("mail.example.com", &lookup);
    let _ = format!("{verdict:?}");
    let _ = dmarc::dmarc_names_needed("mail.example.com", &lookup);
}
