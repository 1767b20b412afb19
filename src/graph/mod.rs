//! Microsoft Graph access: authentication ([`auth`]), the HTTP client with retries and
//! per-tenant request pools ([`client`], [`pool`]; answer bodies capped in `body`), slowing a pool Graph warns about
//! ([`limit_warning`]), `@odata.nextLink` paging ([`paging`]), `$batch`
//! ([`batch`]) and the error model ([`errors`]).
//!
//! Invariants: the bearer token is only ever sent to the configured Graph root (a nextLink to
//! another host is refused); tokens, secrets and assertions never appear in errors or logs;
//! every HTTP request is counted in `m365_posture_graph_requests_total`.

pub mod assertion;
pub mod auth;
pub mod batch;
mod body;
pub mod client;
pub mod device_code;
pub mod errors;
pub mod limit_warning;
pub mod pacer;
pub mod paging;
pub mod pool;
pub mod retry;

pub use auth::{RefreshTokenStore, TokenProvider};
pub use client::{GraphClient, Pool};
pub use errors::{AuthError, GraphError};
