//! kvop keeps NATS JetStream Key-Value buckets and keys exactly as declared.
//!
//! One pipeline serves both modes: **load** desired state ([`manifest`]), **observe**
//! NATS ([`nats::observe`]), **plan** ([`plan`], pure), **apply** ([`apply`]) and
//! **report** ([`report`]). [`pass`] is the part every file front door shares
//! (observe, check, plan, guard); [`reconcile`] drives it for `kvop reconcile`.

pub mod api;
pub mod apply;
pub mod cli;
pub mod controller;
pub mod crds;
pub mod desired;
pub mod error_chain;
pub mod export;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod nats;
pub mod observed;
pub mod output;
pub mod ownership;
pub mod pass;
pub mod plan;
pub mod probe;
pub mod problem;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod server;
pub mod spec;
pub mod telemetry;
pub mod units;
pub mod watch;
