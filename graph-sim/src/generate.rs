//! Deterministic tenant generator (`--users N --seed S`). Placeholder until the realistic
//! generator lands: members with mailboxes and one domain.

use serde_json::json;

use crate::tenant::TenantFile;

/// Generates a tenant of `users` users; the same arguments give the same tenant.
pub fn generate(users: usize, seed: u64) -> TenantFile {
    let mut tenant = TenantFile {
        tenant_id: format!("00000000-0000-4000-8000-{seed:012x}"),
        ..TenantFile::default()
    };
    tenant
        .domains
        .push(json!({"id": "contoso.com", "isVerified": true}));
    for i in 0..users {
        let id = format!("00000000-0000-4000-9000-{i:012x}");
        tenant.users.push(json!({"id": id, "userPrincipalName": format!("user{i}@contoso.com"), "displayName": format!("User {i}"), "userType": "Member", "accountEnabled": true}));
        tenant.mailboxes.push(id);
    }
    tenant
}
