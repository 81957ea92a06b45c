//! The CLI's front doors on files: `kvop reconcile` (and `--dry-run --diff`, which
//! `kvop diff` also is), `reconcile --watch`, `kvop export` and `kvop probe`. Each loads,
//! runs the shared [`pass`](crate::pass) and hands the plan to [`apply`](crate::apply)
//! or [`report`](crate::report); none has pipeline steps of its own.

pub mod export;
pub mod probe;
pub mod reconcile;
pub mod refused;
pub mod watch;
