//! The one pass from declarations to a checked plan, for every front door: **observe**
//! what the declarations name, **check** what only the server knows, **plan** through
//! the pure planner, and **guard** what must not be written without a yes. Loading (or
//! resolving a resource) comes before it and applying after it; both are the caller's,
//! since a dry run stops here and a paused object is only reported.
//!
//! One shape per front door, in its own file: `files` for the file front doors (a sweep
//! of every declared bucket). Nothing here imports `kube` or the operator.

mod files;

pub use files::{EmptyPrune, PassOptions, Planned, plan_against_server};

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
