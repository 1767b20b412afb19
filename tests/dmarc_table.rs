//! DMARC verdict table: `_dmarc` answers (and organizational-domain fallbacks) against what
//! `checks::dmarc::evaluate_dmarc` must give, with the default options.
//!
//! Row format: name, the checked domain, the TXT answers (each record a list of
//! character-strings; `SERVFAIL` marks a failed lookup), the expected summary:
//! `<source>:<findings>` where source is `domain` or `org` and findings is `-` or a comma list
//! of `E4` (not enforced), `E5` (subdomains not enforced), `E6:<reason>` (partial);
//! `E3:<reason>` for `domain.dmarc_missing`; `dns:<reason prefix>` for a lookup failure.

use m365_posture::checks::dmarc::{
    dmarc_names_needed, evaluate_dmarc, fallback_domain, DmarcSource, DmarcVerdict, Policy,
};
use m365_posture::checks::spf::TxtAnswer;
use m365_posture::snapshot::{DnsAnswers, Unavailable};

type Row = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [&'static [&'static str]])],
    &'static str,
);

const SERVFAIL: &[&[&str]] = &[&["SERVFAIL"]];
const NONE: &[&[&str]] = &[];
const REJECT: &[&[&str]] = &[&["v=DMARC1; p=reject"]];

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Policies at the domain itself.
    ("p=reject", "contoso.com", &[("_dmarc.contoso.com", REJECT)], "domain:-"),
    ("p=none", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=none; rua=mailto:dmarc@contoso.com"]])], "domain:E4,E5"),
    ("p=reject sp=none", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; sp=none"]])], "domain:E5"),
    ("p=none sp=reject", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=none; sp=reject"]])], "domain:E4"),
    ("p=quarantine alone is enforced", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=quarantine"]])], "domain:-"),
    ("quarantine pct=50", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=quarantine; pct=50"]])], "domain:E6:pct"),
    ("reject pct=0", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; pct=0"]])], "domain:E6:pct"),
    ("reject pct=100", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; pct=100"]])], "domain:-"),
    ("none pct=10 is not partial", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=none; pct=10"]])], "domain:E4,E5"),
    ("pct not a number", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; pct=abc"]])], "domain:-"),
    ("pct above 100", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; pct=150"]])], "domain:-"),
    ("t=y testing", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; t=y"]])], "domain:E6:t_flag"),
    ("t=n", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; t=n"]])], "domain:-"),
    ("np ignored", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; np=none"]])], "domain:-"),
    ("full record", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1;p=reject;sp=quarantine;pct=100;rua=mailto:d@rua.agari.com;ruf=mailto:d@ruf.agari.com;fo=1"]])], "domain:-"),
    // RFC 7489 appendix B examples.
    ("B.2.1 monitoring", "example.com", &[("_dmarc.example.com", &[&["v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com"]])], "domain:E4,E5"),
    ("B.2.2 third-party reports", "example.com", &[("_dmarc.example.com", &[&["v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net"]])], "domain:E4,E5"),
    ("B.2.3 quarantine pct=25 with size limit", "example.com", &[("_dmarc.example.com", &[&["v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25"]])], "domain:E6:pct"),
    // Duplicated tags (section 6.4 uses the RFC 6376 section 3.2 tag-list: duplicates are an error).
    ("duplicate p", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=none; p=reject"]])], "E3:invalid"),
    ("duplicate p in different case", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; P=reject"]])], "E3:invalid"),
    ("duplicate sp", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; sp=reject; sp=none"]])], "E3:invalid"),
    ("duplicate pct", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; pct=100; pct=10"]])], "E3:invalid"),
    ("duplicate rua", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; rua=mailto:a@contoso.com; rua=mailto:b@contoso.com"]])], "E3:invalid"),
    ("duplicate version tag", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; v=DMARC1; p=reject"]])], "E3:invalid"),
    ("duplicate unknown tag", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; fo=1; fo=0"]])], "E3:invalid"),
    ("sub with duplicate tags does not fall back", "sub.contoso.com", &[("_dmarc.sub.contoso.com", &[&["v=DMARC1; p=reject; p=reject"]]), ("_dmarc.contoso.com", REJECT)], "E3:invalid"),
    // Invalid p / sp and rua (RFC 7489 6.6.3 step 6).
    ("rua without p", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; rua=mailto:x@contoso.com"]])], "domain:E4,E5"),
    ("invalid p with rua", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=block; rua=mailto:x@contoso.com"]])], "domain:E4,E5"),
    ("invalid p without rua", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=block"]])], "E3:invalid"),
    ("invalid sp without rua", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; sp=bogus"]])], "E3:invalid"),
    ("invalid sp with rua", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; sp=bogus; rua=mailto:x@contoso.com"]])], "domain:E4,E5"),
    ("rua that is not a uri", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; rua=dmarc-reports"]])], "E3:invalid"),
    ("rua with size limit", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; rua=mailto:x@contoso.com!10m"]])], "domain:E4,E5"),
    ("version only", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1"]])], "E3:invalid"),
    // Version tag, case and whitespace.
    ("p before v", "contoso.com", &[("_dmarc.contoso.com", &[&["p=reject; v=DMARC1"]])], "E3:invalid"),
    ("lower-case version value", "contoso.com", &[("_dmarc.contoso.com", &[&["v=dmarc1; p=reject"]])], "E3:invalid"),
    ("leading space before v", "contoso.com", &[("_dmarc.contoso.com", &[&[" v=DMARC1; p=reject"]])], "E3:invalid"),
    ("leading tab before v", "contoso.com", &[("_dmarc.contoso.com", &[&["\tv=DMARC1; p=reject"]])], "E3:invalid"),
    ("sub with leading space falls back", "sub.contoso.com", &[("_dmarc.sub.contoso.com", &[&[" v=DMARC1; p=none"]]), ("_dmarc.contoso.com", REJECT)], "org:-"),
    ("tab around = in the version", "contoso.com", &[("_dmarc.contoso.com", &[&["v\t=\tDMARC1\t; p=reject"]])], "domain:-"),
    ("missing separator after version", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1 p=reject"]])], "E3:invalid"),
    ("upper-case tag names and values", "contoso.com", &[("_dmarc.contoso.com", &[&["V=DMARC1; P=REJECT; SP=NONE"]])], "domain:E5"),
    ("spaces around = and ;", "contoso.com", &[("_dmarc.contoso.com", &[&["v = DMARC1 ;  p = quarantine ; sp = reject ;"]])], "domain:-"),
    ("trailing semicolon", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; "]])], "domain:-"),
    ("two strings", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=rej", "ect; rua=mailto:a@contoso.com"]])], "domain:-"),
    ("malformed extra tag ignored", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; adkim"]])], "domain:-"),
    // Record selection.
    ("no record", "contoso.com", &[("_dmarc.contoso.com", NONE)], "E3:missing"),
    ("two records", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject"], &["v=DMARC1; p=none"]])], "E3:multiple"),
    ("duplicate identical records", "contoso.com", &[("_dmarc.contoso.com", &[&["v=DMARC1; p=reject"], &["v=DMARC1; p=reject"]])], "E3:multiple"),
    ("dmarc beside other txt", "contoso.com", &[("_dmarc.contoso.com", &[&["some-verification=1"], &["v=DMARC1; p=reject"]])], "domain:-"),
    // Organizational-domain fallback.
    ("sub inherits sp=none", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE), ("_dmarc.contoso.com", &[&["v=DMARC1; p=reject; sp=none"]])], "org:E4"),
    ("sub inherits p=none", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE), ("_dmarc.contoso.com", &[&["v=DMARC1; p=none"]])], "org:E4"),
    ("sub inherits reject", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE), ("_dmarc.contoso.com", REJECT)], "org:-"),
    ("sub inherits sp with pct", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE), ("_dmarc.contoso.com", &[&["v=DMARC1; p=quarantine; sp=reject; pct=30"]])], "org:E6:pct"),
    ("sub with own record", "sub.contoso.com", &[("_dmarc.sub.contoso.com", REJECT), ("_dmarc.contoso.com", &[&["v=DMARC1; p=none"]])], "domain:-"),
    ("sub with two records does not fall back", "sub.contoso.com", &[("_dmarc.sub.contoso.com", &[&["v=DMARC1; p=reject"], &["v=DMARC1; p=none"]]), ("_dmarc.contoso.com", REJECT)], "E3:multiple"),
    ("sub with invalid record does not fall back", "sub.contoso.com", &[("_dmarc.sub.contoso.com", &[&["v=DMARC1; p=block"]]), ("_dmarc.contoso.com", REJECT)], "E3:invalid"),
    ("sub with junk txt falls back", "sub.contoso.com", &[("_dmarc.sub.contoso.com", &[&["p=reject"]]), ("_dmarc.contoso.com", REJECT)], "org:-"),
    ("sub with junk txt and nothing above", "sub.contoso.com", &[("_dmarc.sub.contoso.com", &[&["p=reject"]]), ("_dmarc.contoso.com", NONE)], "E3:invalid"),
    ("sub and org missing", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE), ("_dmarc.contoso.com", NONE)], "E3:missing"),
    ("deep sub goes to the registrable domain", "a.b.contoso.com", &[("_dmarc.a.b.contoso.com", NONE), ("_dmarc.b.contoso.com", &[&["v=DMARC1; p=none"]]), ("_dmarc.contoso.com", REJECT)], "org:-"),
    ("co.uk sub uses the psl", "mail.contoso.co.uk", &[("_dmarc.mail.contoso.co.uk", NONE), ("_dmarc.contoso.co.uk", REJECT), ("_dmarc.co.uk", &[&["v=DMARC1; p=none"]])], "org:-"),
    ("co.uk registrable domain has no fallback", "contoso.co.uk", &[("_dmarc.contoso.co.uk", NONE), ("_dmarc.co.uk", REJECT)], "E3:missing"),
    ("onmicrosoft never falls back", "contoso.onmicrosoft.com", &[("_dmarc.contoso.onmicrosoft.com", NONE), ("_dmarc.onmicrosoft.com", REJECT)], "E3:missing"),
    ("onmicrosoft with own record", "contoso.onmicrosoft.com", &[("_dmarc.contoso.onmicrosoft.com", REJECT)], "domain:-"),
    // Lookup failures.
    ("servfail at the domain", "contoso.com", &[("_dmarc.contoso.com", SERVFAIL)], "dns:dns_servfail"),
    ("servfail at the fallback", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE), ("_dmarc.contoso.com", SERVFAIL)], "dns:dns_servfail"),
    ("fallback not collected", "sub.contoso.com", &[("_dmarc.sub.contoso.com", NONE)], "dns:not_collected"),
    ("nothing collected", "contoso.com", &[], "dns:not_collected"),
    ("found record makes fallback failure irrelevant", "sub.contoso.com", &[("_dmarc.sub.contoso.com", REJECT), ("_dmarc.contoso.com", SERVFAIL)], "domain:-"),
];

fn answers_for(row: &Row) -> DnsAnswers {
    let mut answers = DnsAnswers::new();
    for (name, records) in row.2.iter() {
        let answer: TxtAnswer = if *records == SERVFAIL {
            Err(Unavailable::dns_failure(*name, "servfail"))
        } else {
            Ok(records.iter().map(|parts| parts.concat()).collect())
        };
        answers.insert((*name).to_owned(), answer);
    }
    answers
}

fn summary(verdict: &DmarcVerdict) -> String {
    let applied = match verdict {
        DmarcVerdict::Missing { reason, .. } => return format!("E3:{}", reason.as_str()),
        DmarcVerdict::DnsError(failure) => return format!("dns:{failure}"),
        DmarcVerdict::Applied(applied) => applied,
    };
    let mut findings = Vec::new();
    if applied.effective_policy() == Policy::None {
        findings.push("E4".to_owned());
    }
    if applied.subdomain_policy() == Some(Policy::None) {
        findings.push("E5".to_owned());
    }
    if let Some(reason) = applied.partial(true, false) {
        findings.push(format!("E6:{}", reason.as_str()));
    }
    let source = match applied.source {
        DmarcSource::Domain => "domain",
        DmarcSource::Organizational => "org",
    };
    let findings = if findings.is_empty() {
        "-".to_owned()
    } else {
        findings.join(",")
    };
    format!("{source}:{findings}")
}

#[test]
fn dmarc_table_gives_the_expected_verdicts() {
    assert!(TABLE.len() >= 50, "the table must hold at least 50 rows");
    let mut wrong = Vec::new();
    for row in TABLE {
        let answers = answers_for(row);
        let verdict = evaluate_dmarc(row.1, &|name| answers.get(name));
        let got = summary(&verdict);
        let expected = row.3;
        let matches = match expected.strip_prefix("dns:") {
            Some(prefix) => got.starts_with(&format!("dns:{prefix}")),
            None => got == expected,
        };
        if !matches {
            wrong.push(format!(
                "{}: expected {expected}, got {got} ({verdict:?})",
                row.0
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn names_needed_are_asked_until_the_verdict_needs_nothing_more() {
    for row in TABLE {
        let answers = answers_for(row);
        let needed = dmarc_names_needed(row.1, &|name| answers.get(name));
        let verdict = evaluate_dmarc(row.1, &|name| answers.get(name));
        let not_collected = matches!(
            verdict,
            DmarcVerdict::DnsError(Unavailable::NotCollected { .. })
        );
        assert_eq!(!needed.is_empty(), not_collected, "{}: {needed:?}", row.0);
    }
    let mut answers = DnsAnswers::new();
    let ask = |answers: &DnsAnswers| dmarc_names_needed("sub.contoso.com", &|n| answers.get(n));
    assert_eq!(ask(&answers), vec!["_dmarc.sub.contoso.com"]);
    answers.insert("_dmarc.sub.contoso.com".to_owned(), Ok(vec![]));
    assert_eq!(ask(&answers), vec!["_dmarc.contoso.com"]);
    answers.insert("_dmarc.contoso.com".to_owned(), Ok(vec![]));
    assert!(ask(&answers).is_empty());
}

#[test]
fn evidence_names_the_record_its_tags_and_where_it_came_from() {
    let row = TABLE
        .iter()
        .find(|row| row.0 == "sub inherits sp with pct")
        .unwrap();
    let answers = answers_for(row);
    let DmarcVerdict::Applied(applied) = evaluate_dmarc("SUB.contoso.com.", &|n| answers.get(n))
    else {
        panic!("expected a record");
    };
    assert_eq!(applied.location, "_dmarc.contoso.com");
    assert_eq!(applied.source, DmarcSource::Organizational);
    assert_eq!(applied.record.policy, Policy::Quarantine);
    assert_eq!(applied.record.subdomain_policy, Some(Policy::Reject));
    assert_eq!(applied.record.pct, 30);
    assert_eq!(applied.effective_policy(), Policy::Reject);
    assert_eq!(applied.subdomain_policy(), None);
}

#[test]
fn organizational_domain_comes_from_the_public_suffix_list() {
    assert_eq!(
        fallback_domain("mail.contoso.co.uk").as_deref(),
        Some("contoso.co.uk")
    );
    assert_eq!(
        fallback_domain("a.b.contoso.com").as_deref(),
        Some("contoso.com")
    );
    assert_eq!(fallback_domain("contoso.com"), None);
    assert_eq!(fallback_domain("contoso.onmicrosoft.com"), None);
    assert_eq!(fallback_domain("contoso.mail.onmicrosoft.com"), None);
}
