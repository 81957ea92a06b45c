//! kvop against its anchors, measured side by side in one run on this machine.
//!
//! `cargo bench --bench kvop` starts its own nats-server 2.15.1, runs every workload
//! several times and prints medians and ratios to anchors measured in the same run (a
//! minimal async-nats program doing the same job), so noisy machines still compare like
//! with like. Results and how to read them: BENCHMARKS.md.

#[path = "../../tests/support/mod.rs"]
mod support;

mod operator;
mod workloads;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(workloads::run_all());
}
