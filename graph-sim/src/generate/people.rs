//! Users with their authentication methods, mailboxes, calendar permissions and inbox rules.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::shares as s;
use super::{guid, Context};
use crate::tenant::TenantFile;

const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Brian",
    "Cameron",
    "Christie",
    "Debra",
    "Diego",
    "Emily",
    "Enrico",
    "Gerhart",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Irvin",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Sara",
    "Tomas",
    "Wanda",
    "Yuki",
    "Zoe",
    "Omar",
    "Priya",
    "Chen",
    "Fatima",
    "Lars",
    "Ingrid",
    "Mateo",
    "Aisha",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Pia",
    "Johnson",
    "White",
    "Cline",
    "Berger",
    "Siciliani",
    "Braun",
    "Bossi",
    "Brenner",
    "Archie",
    "Cheung",
    "Henderson",
    "Lamb",
    "Lauer",
    "Lam",
    "Tai",
    "Holloway",
    "Robbins",
    "Bowen",
    "Graham",
    "Wilke",
    "Fernandez",
    "Gupta",
    "Gonzalez",
    "Davis",
    "Novak",
    "Kowalski",
    "Tanaka",
    "Nakamura",
    "Haddad",
    "Okafor",
    "Larsen",
    "Silva",
    "Rossi",
];
const ORGS: &[&str] = &[
    "contoso",
    "fabrikam",
    "northwind",
    "adatum",
    "tailspin",
    "woodgrove",
    "litware",
    "proseware",
    "wingtip",
    "fourthcoffee",
    "alpineski",
    "blueyonder",
    "coho",
    "lucerne",
    "margie",
    "trey",
];
const EXTERNAL_MAIL: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "evil.example",
    "partner-corp.example",
];

pub(crate) fn org_name(rng: &mut ChaCha8Rng) -> String {
    let base = ORGS.choose(rng).copied().unwrap_or("contoso");
    format!("{base}{}", rng.gen_range(10..99))
}

pub(super) fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

pub(super) fn external_address(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}{}@{}",
        pick(rng, FIRST).to_lowercase(),
        rng.gen_range(1..999),
        pick(rng, EXTERNAL_MAIL)
    )
}

pub(super) fn recipient(address: &str) -> Value {
    json!({"emailAddress": {"name": address, "address": address}})
}

/// Fills users, methods, mailboxes, calendar permissions and rules.
pub(crate) fn generate(
    tenant: &mut TenantFile,
    context: &Context,
    count: usize,
    rng: &mut ChaCha8Rng,
) {
    tenant.users.reserve(count);
    let mut member_upns: Vec<String> = Vec::new();
    for number in 0..count {
        let id = guid(rng);
        let guest = number > 0 && rng.gen_bool(s::GUEST);
        let (user, upn) = if guest {
            guest_user(context, &id, rng)
        } else {
            member(context, &id, number, rng)
        };
        tenant.users.push(user);
        if guest {
            continue;
        }
        let methods = super::methods::methods(context, rng);
        tenant.authentication_methods.insert(id.clone(), methods);
        if !rng.gen_bool(s::MAILBOX) {
            without_exchange_online_mailbox(tenant.users.last_mut());
        } else {
            tenant.mailboxes.push(id.clone());
            if let Some(perms) = super::mailbox::calendar(rng, &member_upns) {
                tenant.calendar_permissions.insert(id.clone(), perms);
            }
            let rules = super::mailbox::rules(rng, &member_upns);
            if !rules.is_empty() {
                tenant.message_rules.insert(id.clone(), rules);
            }
        }
        member_upns.push(upn);
    }
}

/// A member without an Exchange Online mailbox: a synced user keeps `mail` (hybrid: the mailbox
/// is on premises, and Graph answers 404 `MailboxNotEnabledForRESTAPI`); a cloud user has no
/// mail at all.
fn without_exchange_online_mailbox(user: Option<&mut Value>) {
    if let Some(user) = user.filter(|u| u.get("onPremisesSyncEnabled") != Some(&json!(true))) {
        set(user, "mail", Value::Null);
    }
}

fn base_user(id: &str, upn: &str, first: &str, last: &str, mail: &str, created: String) -> Value {
    json!({
        "id": id, "deletedDateTime": null, "accountEnabled": true, "ageGroup": null, "businessPhones": [],
        "city": null, "companyName": null, "consentProvidedForMinor": null, "country": null,
        "createdDateTime": created, "creationType": null, "department": null, "displayName": format!("{first} {last}"),
        "employeeId": null, "givenName": first, "jobTitle": null, "lastPasswordChangeDateTime": null,
        "legalAgeGroupClassification": null, "mail": mail, "mailNickname": upn.split('@').next().unwrap_or_default(),
        "mobilePhone": null, "officeLocation": null, "onPremisesDistinguishedName": null, "onPremisesDomainName": null,
        "onPremisesImmutableId": null, "onPremisesLastSyncDateTime": null, "onPremisesProvisioningErrors": [],
        "onPremisesSamAccountName": null, "onPremisesSecurityIdentifier": null, "onPremisesSyncEnabled": null,
        "onPremisesUserPrincipalName": null, "otherMails": [], "passwordPolicies": null, "preferredLanguage": "en-US",
        "proxyAddresses": [], "surname": last, "usageLocation": "US", "userPrincipalName": upn, "userType": "Member",
        "imAddresses": [], "identities": [], "externalUserState": null, "externalUserStateChangeDateTime": null,
        "showInAddressList": null, "securityIdentifier": null, "employeeType": null, "faxNumber": null,
        "state": null, "streetAddress": null, "postalCode": null, "preferredDataLocation": null,
        "assignedLicenses": [], "assignedPlans": [], "provisionedPlans": [],
    })
}

fn set(user: &mut Value, key: &str, value: Value) {
    if let Some(map) = user.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}

fn guest_user(context: &Context, id: &str, rng: &mut ChaCha8Rng) -> (Value, String) {
    let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
    let mail = external_address(rng);
    let upn = format!(
        "{}#EXT#@{}",
        mail.replace('@', "_"),
        context.initial_domain()
    );
    let mut user = base_user(
        id,
        &upn,
        first,
        last,
        &mail,
        context.days_ago(rng.gen_range(1.0..900.0)),
    );
    set(&mut user, "userType", json!("Guest"));
    set(&mut user, "creationType", json!("Invitation"));
    set(&mut user, "externalUserState", json!("Accepted"));
    set(&mut user, "proxyAddresses", json!([format!("SMTP:{mail}")]));
    set(&mut user, "otherMails", json!([mail]));
    set(
        &mut user,
        "accountEnabled",
        json!(!rng.gen_bool(s::GUEST_DISABLED)),
    );
    set(
        &mut user,
        "identities",
        json!([{"signInType": "userPrincipalName", "issuer": context.initial_domain(), "issuerAssignedId": upn}]),
    );
    (user, upn)
}

fn member(context: &Context, id: &str, number: usize, rng: &mut ChaCha8Rng) -> (Value, String) {
    let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
    let upn = format!(
        "{}.{}{number}@{}",
        first.to_lowercase(),
        last.to_lowercase(),
        context.primary_domain()
    );
    let mut user = base_user(
        id,
        &upn,
        first,
        last,
        &upn,
        context.days_ago(rng.gen_range(100.0..2000.0)),
    );
    let roll: f64 = rng.gen();
    let (sync, never_expires_share) = if roll < s::SYNCED {
        (Some(true), s::SYNCED_NEVER_EXPIRES)
    } else if roll < s::SYNCED + s::FORMERLY_SYNCED {
        (Some(false), s::SYNCED_NEVER_EXPIRES)
    } else {
        (None, s::CLOUD_NEVER_EXPIRES)
    };
    let mut policies: Vec<&str> = Vec::new();
    if rng.gen_bool(never_expires_share) {
        policies.push("DisablePasswordExpiration");
    }
    if sync.is_none() && rng.gen_bool(s::CLOUD_WEAK_PASSWORD) {
        policies.push("DisableStrongPassword");
    }
    if let Some(enabled) = sync {
        set(&mut user, "onPremisesSyncEnabled", json!(enabled));
        let last_sync = if enabled && rng.gen_bool(s::SYNC_STALE) {
            rng.gen_range(8.0..60.0)
        } else {
            rng.gen_range(0.0..0.9)
        };
        set(
            &mut user,
            "onPremisesLastSyncDateTime",
            json!(context.days_ago(last_sync)),
        );
        set(&mut user, "onPremisesImmutableId", json!(base64_id(rng)));
        set(
            &mut user,
            "onPremisesSamAccountName",
            json!(format!("{}{}", first.to_lowercase(), number)),
        );
        set(
            &mut user,
            "onPremisesDomainName",
            json!(format!("corp.{}", context.primary_domain())),
        );
        set(&mut user, "onPremisesUserPrincipalName", json!(upn));
        if rng.gen_bool(s::PROVISIONING_ERROR) {
            set(
                &mut user,
                "onPremisesProvisioningErrors",
                json!([{"category": "PropertyConflict", "occurredDateTime": context.days_ago(rng.gen_range(1.0..200.0)), "propertyCausingError": "ProxyAddress", "value": format!("smtp:{upn}")}]),
            );
        }
    }
    let no_policy = if rng.gen_bool(0.3) {
        json!("None")
    } else {
        Value::Null
    };
    set(
        &mut user,
        "passwordPolicies",
        if policies.is_empty() {
            no_policy
        } else {
            json!(policies.join(", "))
        },
    );
    let age = if rng.gen_bool(s::PASSWORD_OLD) {
        rng.gen_range(91.0..1500.0)
    } else {
        rng.gen_range(0.0..89.0)
    };
    set(
        &mut user,
        "lastPasswordChangeDateTime",
        json!(context.days_ago(age)),
    );
    set(
        &mut user,
        "accountEnabled",
        json!(!rng.gen_bool(s::MEMBER_DISABLED)),
    );
    if rng.gen_bool(s::MINOR) {
        set(&mut user, "ageGroup", json!("minor"));
        set(
            &mut user,
            "legalAgeGroupClassification",
            json!("minorWithParentalConsent"),
        );
        set(&mut user, "consentProvidedForMinor", json!("granted"));
    }
    let alias = upn.split('@').next().unwrap_or_default().to_string();
    let mut proxies = vec![
        format!("SMTP:{upn}"),
        format!("smtp:{alias}@{}", context.initial_domain()),
    ];
    if rng.gen_bool(s::PROXY_ALIAS) {
        proxies.push(format!("smtp:{}@{}.net", first.to_lowercase(), context.org));
    }
    set(&mut user, "proxyAddresses", json!(proxies));
    set(
        &mut user,
        "jobTitle",
        json!(pick(
            rng,
            &[
                "Engineer",
                "Analyst",
                "Manager",
                "Designer",
                "Accountant",
                "Sales Rep"
            ]
        )),
    );
    set(
        &mut user,
        "department",
        json!(pick(
            rng,
            &[
                "Engineering",
                "Finance",
                "Sales",
                "Marketing",
                "HR",
                "Operations"
            ]
        )),
    );
    (user, upn)
}

fn base64_id(rng: &mut ChaCha8Rng) -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rng.gen();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
