//! Deterministic generator of realistic tenants (`graph-sim --users N --seed S`).
//!
//! The same `(users, seed, reference time)` always gives the same tenant; [`generate`] uses
//! the current UTC day at midnight as reference, so dates such as "password changed 200 days
//! ago" stay meaningful. Shares of every trait are the constants in [`shares`]; the finding
//! shares they produce are documented in the crate README and checked by a test.
//!
//! Cost: one pass over the users with a seeded ChaCha stream; no per-user allocation beyond
//! the JSON objects themselves (100,000 users in about a second in release builds).

pub mod shares;

mod apps;
mod domains;
mod mailbox;
mod methods;
mod people;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::tenant::TenantFile;

/// Generates a tenant of `users` users; deterministic for a given seed and UTC day.
pub fn generate(users: usize, seed: u64) -> TenantFile {
    let today = crate::clock::now_utc().date_naive();
    let midnight = today
        .and_hms_opt(0, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
        .unwrap_or_else(crate::clock::now_utc);
    generate_at(users, seed, midnight)
}

/// Generates a tenant relative to `now`; fully deterministic.
pub fn generate_at(users: usize, seed: u64, now: DateTime<Utc>) -> TenantFile {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tenant_id = guid(&mut rng);
    let org = people::org_name(&mut rng);
    let context = Context {
        now,
        tenant_id: tenant_id.clone(),
        org: org.clone(),
    };
    let domains = domains::generate(&context);
    let mut tenant = TenantFile {
        tenant_id: tenant_id.clone(),
        ..TenantFile::default()
    };
    tenant.organization = organization(&context, &domains.objects);
    tenant.domains = domains.objects;
    tenant.dns = domains.dns;
    tenant.dns_hosts = domains.hosts;
    people::generate(&mut tenant, &context, users, &mut rng);
    apps::generate(&mut tenant, &context, users, &mut rng);
    tenant
}

/// What every part of the generator needs.
pub(crate) struct Context {
    pub now: DateTime<Utc>,
    pub tenant_id: String,
    /// Lower-case organisation label, such as `northwind`.
    pub org: String,
}

impl Context {
    pub fn initial_domain(&self) -> String {
        format!("{}.onmicrosoft.com", self.org)
    }

    pub fn primary_domain(&self) -> String {
        format!("{}.com", self.org)
    }

    /// RFC 3339 timestamp `days` before now (fractions allowed).
    pub fn days_ago(&self, days: f64) -> String {
        let when = self.now - Duration::seconds((days * 86_400.0) as i64);
        when.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// A random version-4 GUID from the stream.
pub(crate) fn guid(rng: &mut ChaCha8Rng) -> String {
    let mut b: [u8; 16] = rng.gen();
    if let Some(x) = b.get_mut(6) {
        *x = (*x & 0x0f) | 0x40;
    }
    if let Some(x) = b.get_mut(8) {
        *x = (*x & 0x3f) | 0x80;
    }
    uuid::Uuid::from_bytes(b).to_string()
}

fn organization(context: &Context, domains: &[Value]) -> Value {
    let verified: Vec<Value> = domains
        .iter()
        .filter(|d| d.get("isVerified") == Some(&Value::Bool(true)))
        .map(|d| {
            json!({"name": d["id"], "type": d["authenticationType"], "isDefault": d["isDefault"], "isInitial": d["isInitial"],
                   "capabilities": "Email, OfficeCommunicationsOnline"})
        })
        .collect();
    let name = format!(
        "{}{}",
        context.org.get(..1).unwrap_or_default().to_uppercase(),
        context.org.get(1..).unwrap_or_default()
    );
    json!({
        "id": context.tenant_id, "deletedDateTime": null, "displayName": name,
        "assignedPlans": [], "businessPhones": ["+1 425 555 0100"], "city": "Redmond", "country": null,
        "countryLetterCode": "US", "createdDateTime": context.days_ago(2400.0), "defaultUsageLocation": "US",
        "marketingNotificationEmails": [], "mobileDeviceManagementAuthority": "intune",
        "onPremisesLastSyncDateTime": context.days_ago(0.02), "onPremisesSyncEnabled": true,
        "partnerTenantType": null, "postalCode": "98052", "preferredLanguage": "en",
        "privacyProfile": null, "provisionedPlans": [], "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [], "state": "WA", "street": "1 Main Street",
        "technicalNotificationMails": [format!("it@{}", context.primary_domain())], "tenantType": "AAD",
        "verifiedDomains": verified,
    })
}
