//! The one pass from declarations to a checked plan, for every front door: **observe**
//! what the declarations name, **check** what only the server knows, **plan** through
//! the pure planner, and **guard** what must not be written without a yes. Loading (or
//! resolving a resource) comes before it and applying after it; both are the caller's,
//! since a dry run stops here and a paused object is only reported.
//!
//! One shape per front door, each in its own file: `files` for the file front doors (a
//! sweep of every declared bucket), `key` for the operator's entries (one key, read from
//! its bucket's live view or stream leader), `set` for the operator's entry sets (their
//! bucket whole), `bucket` for the operator's buckets (one stream). The observation source is what differs; the decisions are `plan`'s, and what
//! only Kubernetes knows (a claim's holder is gone, an entry was refused before) comes in
//! as data or through [`Holders`]: nothing here imports `kube` or the operator.

mod bucket;
mod check;
mod files;
mod key;
mod set;

use std::future::Future;

pub use bucket::{BucketPlanned, plan_bucket, plan_bucket_removal};
pub use check::check_against_server;
pub use files::{EmptyPrune, PassOptions, Planned, plan_against_server};
pub use key::{
    DeclaredKey, DepartedKey, KeyClaims, KeyPlanned, KeySource, plan_key_removal, plan_one_key,
};
pub use set::{BucketSource, DeclaredSet, SetPlanned, plan_set, plan_set_removal};

use crate::manifest::LoadErrors;
use crate::nats::NatsError;

/// Why a pass planned nothing.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The declarations ask for what this server cannot hold (a value over the bucket's
    /// limit, a mirror written to): bad input, like a load error.
    #[error(transparent)]
    Invalid(#[from] LoadErrors),
    #[error(transparent)]
    EmptyPrune(#[from] EmptyPrune),
    #[error(transparent)]
    Nats(#[from] NatsError),
}

impl PassError {
    /// Whether the declarations are at fault rather than NATS.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, PassError::Invalid(_) | PassError::EmptyPrune(_))
    }
}

/// Whether the holder of a claim is gone: the object (`namespace/name`) of this manager
/// that a key's `Kvop-Owner` or a stream's claim names no longer exists, or is being
/// deleted, so its claim passes on to the declaration planned now. Only the operator
/// has such holders (its resources); it answers from its watch caches.
pub trait Holders: Sync {
    fn gone(&self, owner: &str) -> impl Future<Output = bool> + Send;
}
