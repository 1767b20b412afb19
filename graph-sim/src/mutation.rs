//! Tenant mutations between scans, shared by the library ([`crate::SimHandle::apply`]) and
//! `POST /_sim/mutate` (one mutation object or an array of them, applied in order).
//!
//! ```json
//! [{"op": "upsert", "collection": "users", "object": {"id": "u9", "accountEnabled": false}},
//!  {"op": "patch", "collection": "users", "id": "u1", "changes": {"accountEnabled": false}},
//!  {"op": "remove", "collection": "service_principals", "id": "sp3"},
//!  {"op": "set_user_data", "section": "message_rules", "user_id": "u1", "objects": []},
//!  {"op": "set_mailbox", "user_id": "u1", "enabled": false},
//!  {"op": "set_dns", "name": "contoso.com", "records": ["v=spf1 -all"]},
//!  {"op": "remove_dns", "name": "_dmarc.contoso.com"},
//!  {"op": "set_faults", "faults": {"non_premium": true}}]
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::Faults;
use crate::tenant::{object_id, TenantFile};
use crate::SimError;

/// Object collections of the tenant file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionName {
    /// `users`
    Users,
    /// `domains`
    Domains,
    /// `applications`
    Applications,
    /// `service_principals`
    ServicePrincipals,
    /// `user_registration_details` (created empty if the file derived it)
    UserRegistrationDetails,
}

/// Per-user sections of the tenant file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserSection {
    /// `authentication_methods`
    AuthenticationMethods,
    /// `calendar_permissions`
    CalendarPermissions,
    /// `message_rules`
    MessageRules,
}

/// One change to the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Mutation {
    /// Adds an object, or replaces the one with the same `id`.
    Upsert {
        /// Target collection.
        collection: CollectionName,
        /// The object in Graph v1.0 shape.
        object: Value,
    },
    /// Sets some properties of an existing object (top-level keys; `null` sets null).
    Patch {
        /// Target collection.
        collection: CollectionName,
        /// Object id.
        id: String,
        /// Properties to set.
        changes: Value,
    },
    /// Removes an object; removing a user also removes its methods, rules, calendar and mailbox.
    Remove {
        /// Target collection.
        collection: CollectionName,
        /// Object id.
        id: String,
    },
    /// Replaces one user's methods, calendar permissions or rules.
    SetUserData {
        /// Which section.
        section: UserSection,
        /// The user.
        user_id: String,
        /// The new list.
        objects: Vec<Value>,
    },
    /// Enables or disables a user's mailbox.
    SetMailbox {
        /// The user.
        user_id: String,
        /// Mailbox present or not.
        enabled: bool,
    },
    /// Sets the TXT strings of a DNS name.
    SetDns {
        /// DNS name.
        name: String,
        /// TXT strings.
        records: Vec<String>,
    },
    /// Removes a DNS name (it then answers NXDOMAIN).
    RemoveDns {
        /// DNS name.
        name: String,
    },
    /// Replaces the fault settings.
    SetFaults {
        /// New settings (boxed: they are much larger than the other variants).
        faults: Box<Faults>,
    },
}

fn collection(tenant: &mut TenantFile, name: CollectionName) -> &mut Vec<Value> {
    match name {
        CollectionName::Users => &mut tenant.users,
        CollectionName::Domains => &mut tenant.domains,
        CollectionName::Applications => &mut tenant.applications,
        CollectionName::ServicePrincipals => &mut tenant.service_principals,
        CollectionName::UserRegistrationDetails => tenant
            .user_registration_details
            .get_or_insert_with(Vec::new),
    }
}

impl Mutation {
    /// Applies the change; the tenant is unchanged when this fails.
    pub fn apply(self, tenant: &mut TenantFile) -> Result<(), SimError> {
        match self {
            Mutation::Upsert {
                collection: name,
                object,
            } => {
                let id = object_id(&object)
                    .ok_or_else(|| SimError::Invalid("upsert object has no string id".into()))?
                    .to_string();
                let list = collection(tenant, name);
                match list.iter_mut().find(|o| object_id(o) == Some(id.as_str())) {
                    Some(existing) => *existing = object,
                    None => list.push(object),
                }
            }
            Mutation::Patch {
                collection: name,
                id,
                changes,
            } => {
                let changes = changes
                    .as_object()
                    .cloned()
                    .ok_or_else(|| SimError::Invalid("patch changes must be an object".into()))?;
                let list = collection(tenant, name);
                let target = list
                    .iter_mut()
                    .find(|o| object_id(o) == Some(id.as_str()))
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| SimError::Invalid(format!("no object {id} to patch")))?;
                for (key, value) in changes {
                    target.insert(key, value);
                }
            }
            Mutation::Remove {
                collection: CollectionName::Users,
                id,
            } => {
                if !tenant.remove_user(&id) {
                    return Err(SimError::Invalid(format!("no user {id} to remove")));
                }
            }
            Mutation::Remove {
                collection: name,
                id,
            } => {
                let list = collection(tenant, name);
                let before = list.len();
                list.retain(|o| object_id(o) != Some(id.as_str()));
                if before == list.len() {
                    return Err(SimError::Invalid(format!("no object {id} to remove")));
                }
            }
            Mutation::SetUserData {
                section,
                user_id,
                objects,
            } => {
                require_user(tenant, &user_id)?;
                let map = match section {
                    UserSection::AuthenticationMethods => &mut tenant.authentication_methods,
                    UserSection::CalendarPermissions => &mut tenant.calendar_permissions,
                    UserSection::MessageRules => &mut tenant.message_rules,
                };
                map.insert(user_id, objects);
            }
            Mutation::SetMailbox { user_id, enabled } => {
                require_user(tenant, &user_id)?;
                tenant.mailboxes.retain(|m| *m != user_id);
                if enabled {
                    tenant.mailboxes.push(user_id);
                }
            }
            Mutation::SetDns { name, records } => {
                tenant
                    .dns
                    .insert(name.trim_end_matches('.').to_ascii_lowercase(), records);
            }
            Mutation::RemoveDns { name } => {
                let key = name.trim_end_matches('.').to_ascii_lowercase();
                tenant.dns.retain(|k, _| !k.eq_ignore_ascii_case(&key));
            }
            Mutation::SetFaults { faults } => tenant.faults = *faults,
        }
        Ok(())
    }
}

fn require_user(tenant: &TenantFile, id: &str) -> Result<(), SimError> {
    tenant
        .user(id)
        .map(|_| ())
        .ok_or_else(|| SimError::Invalid(format!("no user {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_upsert_remove_roundtrip() {
        let mut t = TenantFile::from_json(
            r#"{"tenant_id":"t","users":[{"id":"a","accountEnabled":true}]}"#,
        )
        .unwrap();
        let ops: Vec<Mutation> = serde_json::from_value(json!([
            {"op": "patch", "collection": "users", "id": "a", "changes": {"accountEnabled": false}},
            {"op": "upsert", "collection": "users", "object": {"id": "b"}},
            {"op": "set_mailbox", "user_id": "b", "enabled": true},
            {"op": "set_dns", "name": "Contoso.com.", "records": ["v=spf1 -all"]},
        ]))
        .unwrap();
        for op in ops {
            op.apply(&mut t).unwrap();
        }
        assert_eq!(t.users[0]["accountEnabled"], false);
        assert_eq!(t.mailboxes, vec!["b".to_string()]);
        assert!(t.dns.contains_key("contoso.com"));
        Mutation::Remove {
            collection: CollectionName::Users,
            id: "b".into(),
        }
        .apply(&mut t)
        .unwrap();
        assert!(t.mailboxes.is_empty());
        assert!(Mutation::SetMailbox {
            user_id: "zz".into(),
            enabled: true
        }
        .apply(&mut t)
        .is_err());
    }
}
