//! What a watch pass did, and what passes remember of the ones before: the conflicts
//! already said (each is logged once per foreign revision) and the deletions held back
//! until they settle. Its own module so that the pass and its log both build on it.

use std::collections::HashMap;

use tokio::time::Instant;

use super::held::HeldDeletions;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub writes: usize,
    pub conflicts: usize,
    /// Buckets and keys that could not be brought in line (each logged).
    pub problems: usize,
    /// When deletions held back by the settle time are due, for a pass then.
    pub prune_due: Option<Instant>,
}

/// Keys left alone because of their `updatePolicy`, with the foreign revision that
/// stopped them: said once per revision, not on every pass over their bucket.
pub type Conflicts = HashMap<(String, String), u64>;

/// What passes remember of the ones before.
#[derive(Debug)]
pub struct Memory {
    pub conflicts: Conflicts,
    pub held: HeldDeletions,
}
