//! kvop against its anchors, measured side by side in one run on this machine.
//!
//! `cargo bench --bench kvop` starts its own nats-server 2.15.1, runs every workload
//! several times and prints medians and ratios to anchors measured in the same run (a
//! minimal async-nats program doing the same job), so noisy machines still compare like
//! with like. `cargo bench --bench kvop -- B5` (or `-- export`) runs only the workloads named. Results
//! and how to read them: BENCHMARKS.md.

#[path = "../../tests/support/mod.rs"]
mod support;

mod burst_rows;
mod deployed_operator;
mod entry_sets;
mod export;
mod load_phases;
mod memory;
mod operator;
mod operator_burst;
mod reflector;
mod unrelated_secrets;
mod watch;
mod watch_checkout;
mod workloads;

fn main() {
    // B5's memory anchor runs this binary again as a bare reflector: nothing else may
    // start (no runtime, no servers) before that is decided.
    if reflector::requested() {
        reflector::run();
        return;
    }
    // Cargo passes `--bench`; anything else names workloads to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(workloads::run_all(&only));
}
