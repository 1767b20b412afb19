//! SPF verdict table: real-world-shaped records (with the DNS answers of their include and
//! redirect targets) against the verdict `checks::spf::evaluate_spf` must give.
//!
//! Row format: name, the TXT records at `contoso.com` (each a list of character-strings, which
//! DNS concatenates), the other answers (`SERVFAIL` marks a failed lookup), the expected verdict:
//! `ok`, `any:<reason>`, `missing`, `multiple`, `perm:<kind>` or `dns:<reason prefix>`. A, AAAA
//! and MX answers come from [`HOSTS`] for every row.

use m365_posture::checks::spf::{
    evaluate_spf, spf_names_needed, AllowsAnyReason, DnsNeeded, SpfAnswers, SpfVerdict, TxtAnswer,
};
use m365_posture::snapshot::{DnsAnswers, HostAnswers, Unavailable};
use std::net::IpAddr;

/// The A/AAAA and MX records of the table's world: (name, addresses, exchanges). Every other
/// name has none (NXDOMAIN), so each `a`, `mx` and `exists` that reaches one is a void lookup.
#[rustfmt::skip]
const HOSTS: &[(&str, &[&str], &[&str])] = &[
    ("contoso.com", &["192.0.2.10"], &["mail.contoso.com"]),
    ("mail.contoso.com", &["192.0.2.25", "2001:db8::25"], &[]),
    ("a.example", &["192.0.2.30"], &[]),
    ("b.example", &[], &["mail.contoso.com"]),
    ("c.example", &["127.0.0.2"], &[]),
    ("five.example", &["192.0.2.50"], &[]),
    ("v6only.example", &["2001:db8::6"], &[]),
    ("many-mx.example", &[], &["m1.example", "m2.example", "m3.example", "m4.example", "m5.example", "m6.example", "m7.example", "m8.example", "m9.example", "m10.example", "m11.example"]),
    ("ten-mx.example", &[], &["m1.example", "m2.example", "m3.example", "m4.example", "m5.example", "m6.example", "m7.example", "m8.example", "m9.example", "m10.example"]),
];

const EXO: (&str, &[&str]) = (
    "spf.protection.outlook.com",
    &["v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:52.102.0.0/16 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 include:spfd.protection.outlook.com -all"],
);
const EXO_D: (&str, &[&str]) = (
    "spfd.protection.outlook.com",
    &["v=spf1 ip4:51.4.72.0/24 ip4:51.5.72.0/24 ip4:51.5.80.0/27 ip4:20.47.149.138/32 -all"],
);
const GOOGLE: (&str, &[&str]) = (
    "_spf.google.com",
    &["v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"],
);
const GOOGLE1: (&str, &[&str]) = (
    "_netblocks.google.com",
    &["v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ~all"],
);
const GOOGLE2: (&str, &[&str]) = (
    "_netblocks2.google.com",
    &["v=spf1 ip6:2001:4860:4000::/36 ip6:2404:6800:4000::/36 ~all"],
);
const GOOGLE3: (&str, &[&str]) = (
    "_netblocks3.google.com",
    &["v=spf1 ip4:172.217.0.0/19 ip4:172.217.32.0/20 ~all"],
);
const PLUS: (&str, &[&str]) = ("bad.example", &["v=spf1 +all"]);
const SOFT: (&str, &[&str]) = ("soft.example", &["v=spf1 ~all"]);
const NEUTRAL: (&str, &[&str]) = ("neutral.example", &["v=spf1 ?all"]);
const REDIR_MACRO: (&str, &[&str]) = ("redir.example", &["v=spf1 redirect=%{d}._spf.example.net"]);
const V4ANY: (&str, &[&str]) = ("v4any.example", &["v=spf1 +ip4:0.0.0.0/0 -all"]);
const REDIR_PLUS: (&str, &[&str]) = ("_spf.example.net", &["v=spf1 +all"]);
const STRICT: (&str, &[&str]) = ("strict.example", &["v=spf1 ip4:192.0.2.0/24 -all"]);
const SERVFAIL: &[&str] = &["SERVFAIL"];

type Row = (
    &'static str,
    &'static [&'static [&'static str]],
    &'static [(&'static str, &'static [&'static str])],
    &'static str,
);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Microsoft 365 and Google shapes.
    ("exo only -all", &[&["v=spf1 include:spf.protection.outlook.com -all"]], &[EXO, EXO_D], "ok"),
    ("exo ~all", &[&["v=spf1 include:spf.protection.outlook.com ~all"]], &[EXO, EXO_D], "ok"),
    ("exo ?all", &[&["v=spf1 include:spf.protection.outlook.com ?all"]], &[EXO, EXO_D], "any:neutral_all"),
    ("exo no all", &[&["v=spf1 include:spf.protection.outlook.com"]], &[EXO, EXO_D], "any:no_all"),
    ("exo +all", &[&["v=spf1 include:spf.protection.outlook.com +all"]], &[EXO, EXO_D], "any:plus_all"),
    ("google and exo", &[&["v=spf1 include:_spf.google.com include:spf.protection.outlook.com ~all"]], &[EXO, EXO_D, GOOGLE, GOOGLE1, GOOGLE2, GOOGLE3], "ok"),
    ("upper case names", &[&["V=SPF1 INCLUDE:_SPF.GOOGLE.COM ~ALL"]], &[GOOGLE, GOOGLE1, GOOGLE2, GOOGLE3], "ok"),
    ("mixed case +All", &[&["v=SPF1 Ip4:192.0.2.0/24 +All"]], &[], "any:plus_all"),
    ("space after include colon", &[&["v=spf1 include: spf.protection.outlook.com -all"]], &[EXO, EXO_D], "perm:syntax"),
    // Terminal all.
    ("+all", &[&["v=spf1 +all"]], &[], "any:plus_all"),
    ("bare all", &[&["v=spf1 all"]], &[], "any:plus_all"),
    ("-all", &[&["v=spf1 -all"]], &[], "ok"),
    ("~all", &[&["v=spf1 ~all"]], &[], "ok"),
    ("?all", &[&["v=spf1 ?all"]], &[], "any:neutral_all"),
    ("first all wins (+)", &[&["v=spf1 +all -all"]], &[], "any:plus_all"),
    ("first all wins (-)", &[&["v=spf1 -all +all"]], &[], "ok"),
    ("ip then bare all", &[&["v=spf1 ip4:192.0.2.1 all"]], &[], "any:plus_all"),
    ("empty record", &[&["v=spf1"]], &[], "any:no_all"),
    ("mx only", &[&["v=spf1 mx"]], &[], "any:no_all"),
    ("a mx ptr -all", &[&["v=spf1 a mx ptr -all"]], &[], "ok"),
    ("cidr forms", &[&["v=spf1 a:mail.contoso.com/24 mx//64 a/28//120 -all"]], &[], "ok"),
    ("ip6 range", &[&["v=spf1 ip6:2001:db8::/32 -all"]], &[], "ok"),
    // Whole-address-family ranges.
    ("ip4 /0", &[&["v=spf1 ip4:0.0.0.0/0 -all"]], &[], "any:ip_any"),
    ("+ip4 /0", &[&["v=spf1 +ip4:0.0.0.0/0 ~all"]], &[], "any:ip_any"),
    ("ip6 /0", &[&["v=spf1 ip6:::/0 -all"]], &[], "any:ip_any"),
    ("a/0", &[&["v=spf1 a/0 -all"]], &[], "any:ip_any"),
    ("mx//0", &[&["v=spf1 mx/24//0 -all"]], &[], "any:ip_any"),
    ("a/0 without address records matches nothing", &[&["v=spf1 a:gone.example/0 -all"]], &[], "ok"),
    ("a/0 with only ipv6 records matches no ipv4", &[&["v=spf1 a:v6only.example/0 -all"]], &[], "ok"),
    ("a//0 with ipv6 records", &[&["v=spf1 a:v6only.example//0 -all"]], &[], "any:ip_any"),
    ("mx/0 without mx records matches nothing", &[&["v=spf1 mx:gone.example/0 -all"]], &[], "ok"),
    ("-a/0 is not a pass", &[&["v=spf1 -a/0 ~all"]], &[], "ok"),
    ("two ipv4 halves cover everything", &[&["v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all"]], &[], "any:ip_any"),
    ("four ipv6 quarters cover everything", &[&["v=spf1 ip6:4000::/2 ip6:::/2 ip6:c000::/2 ip6:8000::/2 -all"]], &[], "any:ip_any"),
    ("halves with a gap", &[&["v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/2 -all"]], &[], "ok"),
    ("a fail half does not count", &[&["v=spf1 ip4:0.0.0.0/1 -ip4:128.0.0.0/1 -all"]], &[], "ok"),
    ("-ip4 /0 is not a pass", &[&["v=spf1 -ip4:0.0.0.0/0 ~all"]], &[], "ok"),
    ("?ip4 /0 then -all", &[&["v=spf1 ?ip4:0.0.0.0/0 -all"]], &[], "ok"),
    ("ip4 /00 leading zero", &[&["v=spf1 ip4:0.0.0.0/00 -all"]], &[], "perm:syntax"),
    // Includes.
    ("include +all", &[&["v=spf1 include:bad.example ~all"]], &[PLUS], "any:include_plus_all:bad.example"),
    ("include ~all does not propagate", &[&["v=spf1 include:soft.example -all"]], &[SOFT], "ok"),
    ("include ?all does not propagate", &[&["v=spf1 include:neutral.example -all"]], &[NEUTRAL], "ok"),
    ("include without all does not match", &[&["v=spf1 include:strict.example include:noall.example -all"]], &[STRICT, ("noall.example", &["v=spf1 ip4:198.51.100.1"])], "ok"),
    ("include of a /0 pass", &[&["v=spf1 include:v4any.example -all"]], &[V4ANY], "any:include_plus_all:v4any.example"),
    ("~include of +all closes", &[&["v=spf1 ~include:bad.example +all"]], &[PLUS], "ok"),
    ("?include of +all is neutral", &[&["v=spf1 ?include:bad.example -all"]], &[PLUS], "any:neutral_all"),
    ("-include of v4 /0 leaves v6 to +all", &[&["v=spf1 -include:v4any.example +all"]], &[V4ANY], "any:plus_all"),
    ("nested include +all", &[&["v=spf1 include:outer.example -all"]], &[("outer.example", &["v=spf1 include:bad.example -all"]), PLUS], "any:include_plus_all:outer.example"),
    ("include target nxdomain", &[&["v=spf1 include:gone.example -all"]], &[("gone.example", &[])], "perm:target_missing"),
    ("include target without spf", &[&["v=spf1 include:txtonly.example -all"]], &[("txtonly.example", &["google-site-verification=abc"])], "perm:target_missing"),
    ("include target two records", &[&["v=spf1 include:twice.example -all"]], &[("twice.example", &["v=spf1 -all", "v=spf1 ~all"])], "perm:target_multiple"),
    ("include target servfail", &[&["v=spf1 include:broken.example -all"]], &[("broken.example", SERVFAIL)], "dns:dns_servfail"),
    ("include target not collected", &[&["v=spf1 include:unseen.example -all"]], &[], "dns:not_collected"),
    ("servfail after +all is not needed", &[&["v=spf1 +all include:broken.example"]], &[("broken.example", SERVFAIL)], "any:plus_all"),
    ("servfail before +all is needed", &[&["v=spf1 include:broken.example +all"]], &[("broken.example", SERVFAIL)], "dns:dns_servfail"),
    ("include syntax error", &[&["v=spf1 include:junk.example -all"]], &[("junk.example", &["v=spf1 ip4:300.1.1.1 -all"])], "perm:syntax"),
    ("include loop", &[&["v=spf1 include:loop.example -all"]], &[("loop.example", &["v=spf1 include:contoso.com -all"])], "perm:loop"),
    // Redirect.
    ("redirect to +all", &[&["v=spf1 redirect=_spf.example.net"]], &[REDIR_PLUS], "any:plus_all"),
    ("redirect to strict", &[&["v=spf1 redirect=strict.example"]], &[STRICT], "ok"),
    ("redirect to ?all", &[&["v=spf1 redirect=neutral.example"]], &[NEUTRAL], "any:neutral_all"),
    ("redirect chain to include +all", &[&["v=spf1 redirect=hop.example"]], &[("hop.example", &["v=spf1 redirect=hop2.example"]), ("hop2.example", &["v=spf1 include:bad.example -all"]), PLUS], "any:include_plus_all:bad.example"),
    ("redirect ignored with -all", &[&["v=spf1 -all redirect=_spf.example.net"]], &[], "ok"),
    ("redirect ignored with ~all after it", &[&["v=spf1 redirect=_spf.example.net ~all"]], &[], "ok"),
    ("redirect to nothing", &[&["v=spf1 redirect=gone.example"]], &[("gone.example", &[])], "perm:target_missing"),
    ("redirect to self", &[&["v=spf1 redirect=contoso.com"]], &[], "perm:loop"),
    ("redirect twice", &[&["v=spf1 redirect=a.example redirect=b.example"]], &[], "perm:syntax"),
    // Lookup limit.
    ("two void lookups", &[&["v=spf1 a:gone1.example mx:gone2.example -all"]], &[], "ok"),
    ("three void lookups", &[&["v=spf1 a:gone1.example mx:gone2.example exists:gone3.example -all"]], &[], "perm:too_many_void_lookups"),
    ("exists of an ipv6-only name is void", &[&["v=spf1 exists:v6only.example exists:gone1.example a:gone2.example -all"]], &[], "perm:too_many_void_lookups"),
    ("exists of a fixed name with an A record passes every sender", &[&["v=spf1 exists:c.example -all"]], &[], "any:ip_any"),
    ("-exists of a fixed name with an A record fails every sender", &[&["v=spf1 -exists:c.example +all"]], &[], "ok"),
    ("exists of a fixed name without A records goes on", &[&["v=spf1 exists:v6only.example -all"]], &[], "ok"),
    ("+all before the third void", &[&["v=spf1 a:gone1.example a:gone2.example +all a:gone3.example"]], &[], "any:plus_all"),
    ("mx with 11 exchanges", &[&["v=spf1 mx:many-mx.example -all"]], &[], "perm:too_many_mx"),
    ("mx with 10 exchanges", &[&["v=spf1 mx:ten-mx.example -all"]], &[], "ok"),
    ("exactly 10 lookups", &[&["v=spf1 a mx ptr a:a.example mx:b.example exists:%{i}.c.example a a a a -all"]], &[], "ok"),
    ("11 lookups", &[&["v=spf1 a mx ptr a:a.example mx:b.example exists:%{i}.c.example a a a a a -all"]], &[], "perm:too_many_lookups"),
    ("11 lookups across an include", &[&["v=spf1 a a a a a include:five.example -all"]], &[("five.example", &["v=spf1 a a a a a -all"])], "perm:too_many_lookups"),
    ("+all within 10 lookups", &[&["v=spf1 a a a a a a a a a a +all a"]], &[], "any:plus_all"),
    // Macros.
    ("include macro", &[&["v=spf1 include:%{i}._spf.example.com -all"]], &[], "ok"),
    ("exists macro", &[&["v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} ~all"]], &[], "ok"),
    ("redirect macro", &[&["v=spf1 redirect=%{d}._spf.example.net"]], &[], "undecided"),
    ("redirect macro after a pass /1", &[&["v=spf1 ip4:0.0.0.0/1 redirect=%{d}._spf.example.net"]], &[], "undecided"),
    ("include of a redirect macro does not match", &[&["v=spf1 include:redir.example -all"]], &[REDIR_MACRO], "ok"),
    ("redirect to a redirect macro", &[&["v=spf1 redirect=redir.example"]], &[REDIR_MACRO], "undecided"),
    ("broken macro", &[&["v=spf1 include:%{x}.example.com -all"]], &[], "perm:syntax"),
    ("c macro outside exp", &[&["v=spf1 include:%{c}.x.example -all"]], &[], "perm:syntax"),
    ("r macro outside exp", &[&["v=spf1 exists:%{r}.x.example -all"]], &[], "perm:syntax"),
    ("t macro outside exp", &[&["v=spf1 redirect=%{t}.x.example"]], &[], "perm:syntax"),
    ("upper-case C macro outside exp", &[&["v=spf1 a:%{C}.x.example -all"]], &[], "perm:syntax"),
    // Modifiers and syntax.
    ("exp modifier", &[&["v=spf1 exp=explain._spf.example.com -all"]], &[], "ok"),
    ("unknown modifier", &[&["v=spf1 foo-bar=baz -all"]], &[], "ok"),
    ("unknown mechanism", &[&["v=spf1 foo -all"]], &[], "perm:syntax"),
    ("bad ip4", &[&["v=spf1 ip4:192.0.2.300 -all"]], &[], "perm:syntax"),
    ("ip4 prefix too long", &[&["v=spf1 ip4:192.0.2.0/33 -all"]], &[], "perm:syntax"),
    ("all with argument", &[&["v=spf1 all:foo"]], &[], "perm:syntax"),
    ("colon and slash in an a domain-spec", &[&["v=spf1 a:foo:bar/baz.example.com +all"]], &[], "any:plus_all"),
    ("colon and slash in an mx domain-spec", &[&["v=spf1 mx:foo:bar/baz.example.com +all"]], &[], "any:plus_all"),
    ("cidr read from the end of an a domain-spec", &[&["v=spf1 a:foo:bar/baz.example.com/24//64 -all"]], &[], "ok"),
    ("cidr out of range at the end", &[&["v=spf1 a:foo:bar/baz.example.com/33 -all"]], &[], "perm:syntax"),
    // Record selection, whitespace and multi-string TXT.
    ("no txt", &[], &[], "missing"),
    ("only other txt", &[&["MS=ms12345678"], &["google-site-verification=abcdef"]], &[], "missing"),
    ("spf10 is not spf", &[&["v=spf10 -all"]], &[], "missing"),
    ("leading space is not spf", &[&[" v=spf1 -all"]], &[], "missing"),
    ("two records", &[&["v=spf1 -all"], &["v=spf1 include:spf.protection.outlook.com -all"]], &[], "multiple"),
    ("duplicate identical records", &[&["v=spf1 -all"], &["v=spf1 -all"]], &[], "multiple"),
    ("spf beside dmarc-like and other txt", &[&["MS=ms1"], &["v=spf1 -all"], &["v=DMARC1; p=reject"]], &[], "ok"),
    ("many spaces", &[&["v=spf1   ip4:192.0.2.0/24    -all   "]], &[], "ok"),
    ("tab between terms", &[&["v=spf1 ip4:192.0.2.0/24\t+all"]], &[], "perm:syntax"),
    ("tab after the version is not spf", &[&["v=spf1\t+all"]], &[], "missing"),
    ("cr after the version is not spf", &[&["v=spf1\r+all"]], &[], "missing"),
    ("no-break space after the version is not spf", &[&["v=spf1\u{a0}+all"]], &[], "missing"),
    ("no-break space between terms", &[&["v=spf1 ip4:192.0.2.1\u{a0}+all"]], &[], "perm:syntax"),
    ("trailing cr", &[&["v=spf1 +all\r"]], &[], "perm:syntax"),
    ("two strings", &[&["v=spf1 ip4:192.0.2.1 include:spf.protection.outlook.com", " -all"]], &[EXO, EXO_D], "ok"),
    ("string split inside a term", &[&["v=spf1 include:spf.prot", "ection.outlook.com +all"]], &[EXO, EXO_D], "any:plus_all"),
    ("string split without a space", &[&["v=spf1 ip4:192.0.2.1", "-all"]], &[], "perm:syntax"),
];

fn answers_for(row: &Row) -> DnsAnswers {
    let (_, root, extra, _) = row;
    let mut answers = DnsAnswers::new();
    let root_texts = root.iter().map(|parts| parts.concat()).collect();
    answers.insert("contoso.com".to_owned(), Ok(root_texts));
    for (name, texts) in extra.iter() {
        let answer: TxtAnswer = if *texts == SERVFAIL {
            Err(Unavailable::dns_failure(*name, "servfail"))
        } else {
            Ok(texts.iter().map(|t| (*t).to_owned()).collect())
        };
        answers.insert((*name).to_owned(), answer);
    }
    answers
}

/// The A/AAAA/MX answers the walk over `answers` asks for, from [`HOSTS`], round by round.
#[allow(clippy::unwrap_used)] // a malformed address in the table is a test failure
fn hosts_for(answers: &DnsAnswers) -> HostAnswers {
    let mut hosts = HostAnswers::default();
    loop {
        let needed = needed_in(answers, &hosts);
        if needed.addresses.is_empty() && needed.mx.is_empty() {
            return hosts;
        }
        for name in needed.addresses {
            let found = HOSTS.iter().find(|(n, _, _)| *n == name);
            let addresses = found.map_or(&[][..], |(_, a, _)| a);
            let parsed = addresses.iter().map(|a| a.parse::<IpAddr>().unwrap());
            hosts.addresses.insert(name, Ok(parsed.collect()));
        }
        for name in needed.mx {
            let found = HOSTS.iter().find(|(n, _, _)| *n == name);
            let exchanges = found.map_or(&[][..], |(_, _, mx)| mx);
            let owned = exchanges.iter().map(|x| (*x).to_owned()).collect();
            hosts.mx.insert(name, Ok(owned));
        }
    }
}

fn needed_in(answers: &DnsAnswers, hosts: &HostAnswers) -> DnsNeeded {
    let lookup = |name: &str| answers.get(name);
    let dns = SpfAnswers {
        txt: &lookup,
        hosts,
    };
    spf_names_needed("contoso.com", &dns)
}

fn verdict_in(domain: &str, answers: &DnsAnswers, hosts: &HostAnswers) -> SpfVerdict {
    let lookup = |name: &str| answers.get(name);
    let dns = SpfAnswers {
        txt: &lookup,
        hosts,
    };
    evaluate_spf(domain, &dns)
}

/// The verdict for `contoso.com` over the TXT answers and the [`HOSTS`] answers it needs.
fn verdict_of(answers: &DnsAnswers) -> SpfVerdict {
    verdict_in("contoso.com", answers, &hosts_for(answers))
}

fn summary(verdict: &SpfVerdict) -> String {
    match verdict {
        SpfVerdict::Evaluated {
            allows_any: None, ..
        } => "ok".to_owned(),
        SpfVerdict::Evaluated {
            allows_any: Some(any),
            ..
        } => format!("any:{}", any.reason),
        SpfVerdict::Undecided { .. } => "undecided".to_owned(),
        SpfVerdict::Missing { reason, .. } => reason.as_str().to_owned(),
        SpfVerdict::PermError { error, .. } => format!("perm:{}", error.kind()),
        SpfVerdict::DnsError(failure) => format!("dns:{failure}"),
    }
}

#[test]
fn spf_table_gives_the_expected_verdicts() {
    assert!(TABLE.len() >= 60, "the table must hold at least 60 rows");
    let mut wrong = Vec::new();
    for row in TABLE {
        let answers = answers_for(row);
        let verdict = verdict_of(&answers);
        let got = summary(&verdict);
        let (name, _, _, expected) = row;
        let matches = if let Some(prefix) = expected.strip_prefix("dns:") {
            got.starts_with(&format!("dns:{prefix}"))
        } else {
            got == *expected
        };
        if !matches {
            wrong.push(format!(
                "{name}: expected {expected}, got {got} ({verdict:?})"
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn every_table_row_is_fully_resolvable_by_the_names_it_asks_for() {
    // For rows that need no missing name, names_needed must be empty; the others ask exactly
    // for the absent target.
    for row in TABLE {
        let answers = answers_for(row);
        let hosts = hosts_for(&answers);
        let needed = needed_in(&answers, &hosts);
        let verdict = verdict_in("contoso.com", &answers, &hosts);
        let not_collected = matches!(
            verdict,
            SpfVerdict::DnsError(Unavailable::NotCollected { .. })
        );
        assert_eq!(!needed.is_empty(), not_collected, "{}: {needed:?}", row.0);
    }
}

#[test]
fn evidence_names_the_term_the_record_and_the_redirects() {
    let row = TABLE
        .iter()
        .find(|row| row.0 == "redirect chain to include +all")
        .unwrap();
    let answers = answers_for(row);
    let SpfVerdict::Evaluated {
        record,
        allows_any: Some(any),
        ..
    } = verdict_in("Contoso.COM.", &answers, &hosts_for(&answers))
    else {
        panic!("expected a finding");
    };
    assert_eq!(record, "v=spf1 redirect=hop.example");
    assert_eq!(
        any.reason,
        AllowsAnyReason::IncludePlusAll("bad.example".to_owned())
    );
    assert_eq!(any.term.as_deref(), Some("include:bad.example"));
    assert_eq!(any.record_domain, "hop2.example");
    assert_eq!(any.via_redirect, vec!["hop.example", "hop2.example"]);
}

#[test]
fn macros_are_listed_as_unevaluable() {
    let mut answers = DnsAnswers::new();
    answers.insert(
        "contoso.com".to_owned(),
        Ok(vec!["v=spf1 include:%{i}._spf.example.com -all".to_owned()]),
    );
    let verdict = verdict_of(&answers);
    let SpfVerdict::Evaluated {
        unevaluable,
        allows_any: None,
        ..
    } = verdict
    else {
        panic!("unexpected {verdict:?}");
    };
    assert_eq!(unevaluable, vec!["include:%{i}._spf.example.com"]);
}

#[test]
fn names_needed_walks_the_include_tree_round_by_round() {
    let mut answers = DnsAnswers::new();
    let ask = |answers: &DnsAnswers| needed_in(answers, &HostAnswers::default()).txt;
    assert_eq!(ask(&answers), vec!["contoso.com"]);
    answers.insert(
        "contoso.com".to_owned(),
        Ok(vec![
            "v=spf1 include:_spf.google.com include:spf.protection.outlook.com -all".to_owned(),
        ]),
    );
    assert_eq!(
        ask(&answers),
        vec!["_spf.google.com", "spf.protection.outlook.com"]
    );
    for (name, texts) in [GOOGLE, EXO] {
        answers.insert(
            name.to_owned(),
            Ok(texts.iter().map(|t| (*t).to_owned()).collect()),
        );
    }
    assert_eq!(
        ask(&answers),
        vec![
            "_netblocks.google.com",
            "_netblocks2.google.com",
            "_netblocks3.google.com",
            "spfd.protection.outlook.com"
        ]
    );
    for (name, texts) in [GOOGLE1, GOOGLE2, GOOGLE3, EXO_D] {
        answers.insert(
            name.to_owned(),
            Ok(texts.iter().map(|t| (*t).to_owned()).collect()),
        );
    }
    assert!(ask(&answers).is_empty());
    let verdict = verdict_of(&answers);
    assert!(
        matches!(
            verdict,
            SpfVerdict::Evaluated {
                allows_any: None,
                ..
            }
        ),
        "{verdict:?}"
    );
}

#[test]
fn terms_parse_into_qualifiers_mechanisms_and_modifiers() {
    use m365_posture::checks::spf::{parse, Mechanism, Qualifier};
    let record = parse(
        "v=spf1 ~A:Mail.Contoso.com/24//64 -mx ?ip4:192.0.2.0/24 ip6:2001:db8::1 redirect=_spf.contoso.com exp=x.contoso.com v-x=1",
    )
    .unwrap();
    assert_eq!(record.directives.len(), 4);
    assert_eq!(record.directives[0].qualifier, Qualifier::SoftFail);
    let Mechanism::A {
        domain,
        ip4_prefix,
        ip6_prefix,
    } = &record.directives[0].mechanism
    else {
        panic!("{:?}", record.directives[0]);
    };
    assert_eq!(
        domain.as_ref().and_then(|d| d.lookup_name()).as_deref(),
        Some("mail.contoso.com")
    );
    assert_eq!((*ip4_prefix, *ip6_prefix), (Some(24), Some(64)));
    assert_eq!(record.directives[1].qualifier, Qualifier::Fail);
    assert_eq!(record.directives[2].qualifier, Qualifier::Neutral);
    assert_eq!(
        record.directives[3].mechanism,
        Mechanism::Ip6 {
            network: "2001:db8::1".parse().unwrap(),
            prefix: 128
        }
    );
    assert_eq!(
        record
            .redirect
            .as_ref()
            .and_then(|r| r.lookup_name())
            .as_deref(),
        Some("_spf.contoso.com")
    );
    assert!(record.explanation.is_some());
    assert_eq!(record.unknown_modifiers, vec!["v-x=1"]);
    assert!(parse("v=spf1 exp=a.example exp=b.example").is_err());
    assert!(parse("v=spf1 include:%{i").is_err());
    assert!(
        parse("v=spf1 include:example").is_err(),
        "a domain needs a top label"
    );
}
