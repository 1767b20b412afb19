//! SPF: the record parser and the evaluation over collected TXT answers take attacker-written
//! DNS text. Line 1 is the TXT record of `example.com`; each further line is `name record`
//! (include and redirect targets). Parse and evaluation must answer, never panic or loop.

use m365_posture::checks::spf::{self, SpfAnswers, TxtAnswer};
use m365_posture::snapshot::HostAnswers;
use std::collections::BTreeMap;

/// One input: panics (assertion failures included) are the findings.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let _ = spf::is_spf_record(first);
    let parsed = spf::parse(first);
    assert_eq!(parsed, spf::parse(first), "parse is not deterministic");
    let mut answers: BTreeMap<String, TxtAnswer> = BTreeMap::new();
    answers.insert("example.com".into(), Ok(vec![first.to_owned()]));
    for line in lines {
        let _ = spf::parse(line);
        if let Some((name, record)) = line.split_once(' ') {
            if let Ok(list) = answers
                .entry(spf::normalize(name))
                .or_insert_with(|| Ok(Vec::new()))
            {
                list.push(record.to_owned());
            }
        }
    }
    let lookup = |name: &str| answers.get(name);
    let hosts = HostAnswers::default();
    let dns = SpfAnswers {
        txt: &lookup,
        hosts: &hosts,
    };
    let _ = spf::evaluate_spf("example.com", &dns);
    let _ = spf::spf_names_needed("example.com", &dns);
}
