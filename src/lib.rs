//! kvop keeps NATS JetStream Key-Value buckets and keys exactly as declared.
//!
//! The modules below read top to bottom as the house: the words every stage shares, then
//! the pipeline in the order it runs, then what running a program needs, then the front
//! doors that drive it. A module only uses modules above its own group (or beside
//! it, earlier in the pipeline); `tests/module_house.rs` holds the code to that.
//!
//! One pipeline serves both modes: **load** desired state ([`manifest`]), **observe**
//! NATS ([`nats::observe`]), **plan** ([`plan`], pure), **apply** ([`apply`], the only
//! writer) and **report** ([`report`]). [`pass`] is observe → check → plan → guard, the
//! part every front door shares; [`commands`] are the CLI's front doors on files and
//! [`operator`] is `kvop run`, the Kubernetes front door.

// The words: the resources as declared, the desired and observed state, and the rules
// for names, units and ownership headers.
pub mod api;
pub mod desired;
pub mod error_chain;
pub mod names;
pub mod observed;
pub mod ownership;
pub mod problem;
pub mod spec;
pub mod units;

// The pipeline, in the order it runs: load, observe (and the NATS seam under apply),
// plan, the pass that joins them, apply, report.
pub mod manifest;

pub mod nats;

pub mod plan;

pub mod pass;

pub mod apply;

pub mod report;

// What a running program needs besides the pipeline: metrics and the health endpoint,
// progress lines and logs.
pub mod metrics;
pub mod progress;
pub mod server;
pub mod telemetry;

// The front doors: the command line, the CLI's commands on files (and the generated
// CRDs `kvop crds` prints), and the operator.
pub mod cli;
pub mod commands;
pub mod crds;
pub mod operator;
