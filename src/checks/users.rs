//! Checks for user account settings (13 user.* findings).

use super::{not_implemented, EvalCtx, Outcome};
use crate::findings::FindingId;
use crate::snapshot::TenantSnapshot;

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    let _ = (id, snapshot, ctx);
    not_implemented()
}
