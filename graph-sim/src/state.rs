//! Shared runtime state: the tenant behind a read-write lock plus lookup indexes, the auth
//! state, throttling buckets, fault counters and stats.
//!
//! Invariant: `TenantData::index` always describes `TenantData::file`; every write goes
//! through [`Shared::mutate`], which rebuilds the index before releasing the lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use serde_json::{json, Value};

use crate::changes::{Before, ChangeLog};
use crate::http::throttle::ThrottleState;
use crate::http::token::AuthState;
use crate::stats::Stats;
use crate::tenant::{object_id, ClientRegistration, MethodLabels, TenantFile};

/// The tenant file plus indexes derived from it.
pub(crate) struct TenantData {
    pub file: TenantFile,
    pub index: Index,
    /// Per-object change stamps for the delta endpoints.
    pub changes: ChangeLog,
}

/// Lookups that would otherwise scan the tenant.
#[derive(Default)]
pub(crate) struct Index {
    /// User position by id and by lower-case userPrincipalName.
    pub users: HashMap<String, usize>,
    pub mailboxes: HashSet<String>,
    pub applications: HashMap<String, usize>,
    pub service_principals: HashMap<String, usize>,
    /// Domain position by lower-case id.
    pub domains: HashMap<String, usize>,
    /// Report rows derived from `authentication_methods` when the file has none.
    pub derived_registration: Vec<Value>,
    pub clients: Vec<ClientRegistration>,
}

impl TenantData {
    pub fn new(file: TenantFile) -> TenantData {
        let index = Index::build(&file, &[]);
        TenantData {
            file,
            index,
            changes: ChangeLog::default(),
        }
    }

    /// Position of a user by id or userPrincipalName.
    pub fn user_position(&self, key: &str) -> Option<usize> {
        self.index
            .users
            .get(key)
            .or_else(|| self.index.users.get(&key.to_ascii_lowercase()))
            .copied()
    }

    pub fn user(&self, key: &str) -> Option<&Value> {
        self.user_position(key)
            .and_then(|position| self.file.users.get(position))
    }

    /// The registration report rows in force.
    pub fn registration_rows(&self) -> &[Value] {
        match &self.file.user_registration_details {
            Some(rows) => rows,
            None => &self.index.derived_registration,
        }
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.index
            .clients
            .iter()
            .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Identity bucket size in resource units per 10 s for this tenant.
    pub fn identity_budget(&self) -> u32 {
        if let Some(ru) = self.file.faults.throttle.identity_ru_per_10s {
            return ru;
        }
        match self.file.users.len() {
            0..=49 => 3_500,
            50..=500 => 5_000,
            _ => 8_000,
        }
    }

    /// True when `domain` (any case) is a tenant domain; the token endpoint accepts it as tenant.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.index
            .domains
            .contains_key(&domain.to_ascii_lowercase())
    }
}

impl Index {
    /// Indexes `file`; `previous` derived report rows keep their `lastUpdatedDateTime` where
    /// the user's `methodsRegistered` did not change.
    fn build(file: &TenantFile, previous: &[Value]) -> Index {
        let mut users = HashMap::with_capacity(file.users.len() * 2);
        for (position, user) in file.users.iter().enumerate() {
            if let Some(id) = object_id(user) {
                users.insert(id.to_string(), position);
            }
            if let Some(upn) = user.get("userPrincipalName").and_then(Value::as_str) {
                users.insert(upn.to_ascii_lowercase(), position);
            }
        }
        let derived_registration = if file.user_registration_details.is_none() {
            derive_registration(file, previous)
        } else {
            Vec::new()
        };
        Index {
            users,
            mailboxes: file.mailboxes.iter().cloned().collect(),
            applications: positions(&file.applications, false),
            service_principals: positions(&file.service_principals, false),
            domains: positions(&file.domains, true),
            derived_registration,
            clients: file.effective_clients(),
        }
    }
}

fn positions(objects: &[Value], lower: bool) -> HashMap<String, usize> {
    objects
        .iter()
        .enumerate()
        .filter_map(|(position, o)| {
            let id = object_id(o)?;
            let key = if lower {
                id.to_ascii_lowercase()
            } else {
                id.to_string()
            };
            Some((key, position))
        })
        .collect()
}

/// AAGUIDs of Microsoft Authenticator passkeys (Android, iOS), as Microsoft lists them in
/// learn.microsoft.com/entra/identity/authentication/how-to-enable-authenticator-passkey.
const AUTHENTICATOR_AAGUIDS: &[&str] = &[
    "90a3ccdf-635c-4729-a248-9b709135078f",
    "de1e552d-db1d-4423-a619-566b625cdc84",
];

/// The `methodsRegistered` label of a FIDO2 key or passkey.
fn fido2_label(method: &Value, labels: MethodLabels) -> &'static str {
    if labels == MethodLabels::Fido2 {
        return "fido2";
    }
    let aaguid = method.get("aaGuid").and_then(Value::as_str).unwrap_or("");
    match method.get("passkeyType").and_then(Value::as_str) {
        Some("synced") => "passKeySynced",
        _ if AUTHENTICATOR_AAGUIDS
            .iter()
            .any(|a| a.eq_ignore_ascii_case(aaguid)) =>
        {
            "passKeyDeviceBoundAuthenticator"
        }
        _ => "passKeyDeviceBound",
    }
}

/// The `methodsRegistered` label of an authentication method object, if it has one.
pub(crate) fn method_label(method: &Value, labels: MethodLabels) -> Option<&'static str> {
    let odata_type = method.get("@odata.type").and_then(Value::as_str)?;
    let kind = odata_type.trim_start_matches("#microsoft.graph.");
    Some(match kind {
        "fido2AuthenticationMethod" => fido2_label(method, labels),
        "windowsHelloForBusinessAuthenticationMethod" => "windowsHelloForBusiness",
        "temporaryAccessPassAuthenticationMethod" => "temporaryAccessPass",
        "microsoftAuthenticatorAuthenticationMethod" => "microsoftAuthenticatorPush",
        "phoneAuthenticationMethod" => "mobilePhone",
        "emailAuthenticationMethod" => "email",
        "softwareOathAuthenticationMethod" => "softwareOneTimePasscode",
        "platformCredentialAuthenticationMethod" => "macOsSecureEnclaveKey",
        _ => return None,
    })
}

/// Report rows derived from each user's methods. A row's `lastUpdatedDateTime` is when its
/// `methodsRegistered` last changed: kept from `previous` when they are the same, else now
/// (Microsoft: "The date and time (UTC) when the report was last updated",
/// <https://learn.microsoft.com/graph/api/resources/userregistrationdetails>).
fn derive_registration(file: &TenantFile, previous: &[Value]) -> Vec<Value> {
    let now = crate::clock::now_utc()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let before: HashMap<&str, (&Value, &Value)> = previous
        .iter()
        .filter_map(|row| {
            let id = row.get("id")?.as_str()?;
            Some((
                id,
                (
                    row.get("methodsRegistered")?,
                    row.get("lastUpdatedDateTime")?,
                ),
            ))
        })
        .collect();
    file.users
        .iter()
        .filter_map(|user| {
            let id = object_id(user)?;
            let methods = file.authentication_methods.get(id);
            let vocabulary = file.registration_report.labels;
            let labels: Vec<&str> = match file.registration_report.lagging.get(id) {
                Some(stale) => stale.iter().map(String::as_str).collect(),
                None => methods
                    .into_iter()
                    .flatten()
                    .filter_map(|m| method_label(m, vocabulary))
                    .collect(),
            };
            let mfa = labels.iter().any(|l| *l != "email");
            let passwordless = labels.iter().any(|l| {
                matches!(*l, "fido2" | "passKeyDeviceBound" | "passKeyDeviceBoundAuthenticator" | "passKeySynced" | "windowsHelloForBusiness")
            });
            let guest = user.get("userType").and_then(Value::as_str) == Some("Guest");
            let updated = match before.get(id) {
                Some((methods, at)) if **methods == json!(labels) => (*at).clone(),
                _ => json!(now),
            };
            let preferred = if labels.contains(&"microsoftAuthenticatorPush") {
                "push"
            } else {
                "none"
            };
            Some(json!({
                "id": id,
                "userPrincipalName": user.get("userPrincipalName").cloned().unwrap_or(Value::Null),
                "userDisplayName": user.get("displayName").cloned().unwrap_or(Value::Null),
                "userType": if guest { "guest" } else { "member" },
                "isAdmin": false,
                "isMfaCapable": mfa,
                "isMfaRegistered": mfa,
                "isPasswordlessCapable": passwordless,
                "isSsprCapable": mfa,
                "isSsprEnabled": true,
                "isSsprRegistered": mfa,
                "isSystemPreferredAuthenticationMethodEnabled": true,
                "lastUpdatedDateTime": updated,
                "methodsRegistered": labels,
                "systemPreferredAuthenticationMethods": if preferred == "push" { vec!["push"] } else { Vec::new() },
                "userPreferredMethodForSecondaryAuthentication": preferred,
            }))
        })
        .collect()
}

/// Everything the servers share.
pub(crate) struct Shared {
    pub tenant: RwLock<TenantData>,
    pub auth: Mutex<AuthState>,
    pub throttle: Mutex<ThrottleState>,
    pub stats: Mutex<Stats>,
    /// How often each exact request was seen, for reproducible fault decisions.
    pub occurrences: Mutex<HashMap<String, u64>>,
    pub batches: AtomicU64,
    /// Numbers the draws of the Graph-shaped latency model.
    pub latency_draws: crate::latency::DrawCounter,
    /// `http://127.0.0.1:PORT`, the root of absolute links.
    pub base_url: String,
}

/// Locks a mutex, recovering the data if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn read(&self) -> RwLockReadGuard<'_, TenantData> {
        self.tenant
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, TenantData> {
        self.tenant
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the tenant, stamps what changed for the delta endpoints and rebuilds the
    /// indexes.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut TenantFile) -> R) -> R {
        let mut guard = self.write();
        let before = Before::of(&guard.file);
        let result = f(&mut guard.file);
        let data = &mut *guard;
        data.changes.record(before, &data.file);
        let previous = std::mem::take(&mut guard.index.derived_registration);
        guard.index = Index::build(&guard.file, &previous);
        result
    }

    /// Next occurrence number of an exact request key.
    pub fn occurrence(&self, key: &str) -> u64 {
        let mut counts = lock(&self.occurrences);
        let entry = counts.entry(key.to_string()).or_insert(0);
        let current = *entry;
        *entry += 1;
        current
    }
}
