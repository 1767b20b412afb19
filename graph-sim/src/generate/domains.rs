//! The generated tenant's domains and their DNS: one archetype per row, good and bad SPF and
//! DMARC side by side (see the README table).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::Context;
use crate::tenant::HostRecords;

/// Domain objects plus the DNS maps.
pub(crate) struct Domains {
    pub objects: Vec<Value>,
    pub dns: BTreeMap<String, Vec<String>>,
    pub hosts: BTreeMap<String, HostRecords>,
}

const OUTLOOK_SPF: &str = "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/14 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 include:spfd.protection.outlook.com -all";

fn domain(id: &str, verified: bool, default: bool, initial: bool, federated: bool) -> Value {
    json!({
        "id": id, "authenticationType": if federated { "Federated" } else { "Managed" }, "availabilityStatus": null,
        "isAdminManaged": true, "isDefault": default, "isInitial": initial, "isRoot": !id.starts_with("eu."),
        "isVerified": verified, "manufacturer": null, "model": null,
        "passwordNotificationWindowInDays": if initial { json!(14) } else { Value::Null },
        "passwordValidityPeriodInDays": if initial { json!(2_147_483_647) } else { Value::Null },
        "state": null, "supportedServices": if verified { json!(["Email", "OfficeCommunicationsOnline"]) } else { json!([]) },
    })
}

/// One domain archetype: name, verified, default, initial, federated, TXT at the name, TXT at
/// `_dmarc.name`.
type Row = (String, bool, bool, bool, bool, Vec<String>, Vec<String>);

/// Builds the domain set for an organisation label.
pub(crate) fn generate(context: &Context) -> Domains {
    let o = &context.org;
    let good_spf = "v=spf1 include:spf.protection.outlook.com -all".to_string();
    let long_rua = (1..=12)
        .map(|i| format!("mailto:dmarc-reports-{i}@aggregator-{i}.example"))
        .collect::<Vec<_>>()
        .join(",");
    let rows: Vec<Row> = vec![
        // (name, verified, default, initial, federated, TXT at name, TXT at _dmarc.name)
        (
            context.initial_domain(),
            true,
            false,
            true,
            false,
            vec![good_spf.clone()],
            vec![],
        ),
        (
            format!("{o}.mail.onmicrosoft.com"),
            true,
            false,
            false,
            false,
            vec![],
            vec![],
        ),
        (
            context.primary_domain(),
            true,
            true,
            false,
            false,
            vec![good_spf.clone(), format!("MS=ms{}", o.len() * 1_234_567)],
            vec!["v=DMARC1; p=reject; rua=mailto:dmarc@".to_string() + &context.primary_domain()],
        ),
        (
            format!("{o}.net"),
            true,
            false,
            false,
            true,
            vec!["v=spf1 include:spf.protection.outlook.com ~all".into()],
            vec![format!("v=DMARC1; p=none; rua=mailto:dmarc@{o}.net")],
        ),
        (
            format!("{o}-mail.com"),
            true,
            false,
            false,
            false,
            vec!["v=spf1 +all".into()],
            vec!["v=DMARC1; p=quarantine; pct=50".into()],
        ),
        (format!("{o}.io"), true, false, false, false, vec![], vec![]),
        (
            format!("{o}.co.uk"),
            true,
            false,
            false,
            false,
            vec!["v=spf1 include:spf.protection.outlook.com ?all".into()],
            vec!["v=DMARC1; p=reject; sp=none".into()],
        ),
        (
            format!("eu.{o}.com"),
            true,
            false,
            false,
            false,
            vec![good_spf.clone(), "v=spf1 mx -all".into()],
            vec![],
        ),
        (
            format!("{o}.org"),
            true,
            false,
            false,
            false,
            vec!["v=spf1 include:_spf.mailvendor.example ~all".into()],
            vec![format!("v=DMARC1; p=reject; rua={long_rua}")],
        ),
        (
            // Three void lookups (RFC 7208 section 4.6.4): a permerror, not a `+all`.
            format!("{o}.info"),
            true,
            false,
            false,
            false,
            vec![format!(
                "v=spf1 a:mail.{o}.info a:smtp.{o}.info a:relay.{o}.info mx +all"
            )],
            vec!["v=DMARC1; p=reject".into()],
        ),
        (
            format!("{o}-legacy.com"),
            false,
            false,
            false,
            false,
            vec![],
            vec![],
        ),
    ];
    let mut objects = Vec::new();
    let mut dns = BTreeMap::new();
    for (name, verified, default, initial, federated, txt, dmarc) in rows {
        objects.push(domain(&name, verified, default, initial, federated));
        if !txt.is_empty() {
            dns.insert(name.clone(), txt);
        }
        if !dmarc.is_empty() {
            dns.insert(format!("_dmarc.{name}"), dmarc);
        }
    }
    dns.insert(
        "spf.protection.outlook.com".into(),
        vec![OUTLOOK_SPF.into()],
    );
    dns.insert(
        "spfd.protection.outlook.com".into(),
        vec!["v=spf1 ip4:51.4.72.0/24 ip4:51.5.72.0/24 -all".into()],
    );
    dns.insert("_spf.mailvendor.example".into(), vec!["v=spf1 +all".into()]);
    let mail = HostRecords {
        a: vec![std::net::Ipv4Addr::new(192, 0, 2, 25)],
        ..HostRecords::default()
    };
    let hosts = BTreeMap::from([(format!("mail.{o}.info"), mail)]);
    Domains {
        objects,
        dns,
        hosts,
    }
}
