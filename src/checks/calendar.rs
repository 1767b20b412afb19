//! Checks for external calendar sharing (calendar.shared_externally).

use super::{not_implemented, EvalCtx, Outcome};
use crate::findings::FindingId;
use crate::snapshot::TenantSnapshot;

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    let _ = (id, snapshot, ctx);
    not_implemented()
}
