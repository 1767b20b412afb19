//! Delegated refresh tokens, one per tenant, stored in the state file (mode 0600) by `consent`
//! and rotated by the Graph client. Values are never logged.

use super::{StateError, Store};
use crate::config::Secret;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// The stored refresh token of a tenant, if any.
    pub fn load_refresh_token(&self, tenant: &str) -> Result<Option<Secret>, StateError> {
        let conn = self.lock()?;
        let token: Option<String> = conn
            .query_row(
                "SELECT token FROM refresh_tokens WHERE tenant = ?1",
                [tenant],
                |row| row.get(0),
            )
            .optional()?;
        Ok(token.map(Secret::new))
    }

    /// Stores (or replaces) a tenant's refresh token.
    pub fn save_refresh_token(
        &self,
        tenant: &str,
        token: &Secret,
        at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO refresh_tokens (tenant, token, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant) DO UPDATE SET token = excluded.token, updated_ms = excluded.updated_ms",
            params![tenant, token.expose(), super::to_ms(at)],
        )?;
        Ok(())
    }
}

/// The Graph client's view of the token store: load and durable save by tenant name.
impl crate::graph::RefreshTokenStore for Store {
    fn load(&self, tenant: &str) -> Option<Secret> {
        match self.load_refresh_token(tenant) {
            Ok(token) => token,
            Err(err) => {
                tracing::warn!(tenant, error = %err, "Cannot read the stored refresh token");
                None
            }
        }
    }

    fn save(&self, tenant: &str, token: &Secret) -> Result<(), String> {
        self.save_refresh_token(tenant, token, crate::scan::clock_now())
            .map_err(|err| err.to_string())
    }
}
