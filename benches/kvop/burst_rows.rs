//! B5's rows: bursts through the operator as a cluster comes and with the chart's
//! admission policy (operator_burst.rs runs one), against the apiserver's own create
//! time and B1's anchor, with the operator's peak RSS against a bare reflector's.

use super::workloads::{
    BUCKETS, BURST_RUNS, KEYS, RUNS, Row, create_buckets, delete_buckets, load_average, median,
    raw_pipelined_put,
};
use crate::support::NatsServer;

/// B5: the time of a 10,000-entry burst against B1's anchor, and the operator's peak RSS
/// against the allowance over a bare reflector: 1.3× its peak plus 2 KiB per object.
pub async fn operator_burst() -> Vec<Row> {
    // `KVOP_B5_ENTRIES` changes the burst's size (bytes per object from two sizes); the
    // time anchor stays B1's 10,000 keys.
    let entries = std::env::var("KVOP_B5_ENTRIES")
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|count| *count > 0)
        .unwrap_or(KEYS);
    let objects = entries + BUCKETS;
    let mut bursts = Vec::new();
    let mut admitted = Vec::new();
    // Alternated, so the machine's load drifts over both alike.
    for run in 1..=BURST_RUNS {
        for with_policy in [false, true] {
            let burst = crate::operator_burst::burst(entries, with_policy).await;
            println!(
                "B5 run {run}/{BURST_RUNS}{}: created in {:.1} s, all in NATS at {:.1} s, all Ready at {:.1} s; {} entry reconciles ({:.2}/entry), {} operator writes to the apiserver ({:.2}/entry); VmHWM operator {} KiB ({} sockets at most), reflector {} KiB; load average {}",
                if with_policy {
                    " (admission policy)"
                } else {
                    ""
                },
                burst.created.as_secs_f64(),
                burst.all_in_nats.as_secs_f64(),
                burst.all_ready.as_secs_f64(),
                burst.reconciles,
                burst.reconciles as f64 / entries as f64,
                burst.operator_writes,
                burst.operator_writes as f64 / entries as f64,
                burst.operator_peak_kib,
                burst.operator_peak_sockets,
                burst.reflector_peak_kib,
                load_average()
            );
            match with_policy {
                true => admitted.push(burst),
                false => bursts.push(burst),
            }
        }
    }
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let mut anchor_times = Vec::new();
    for _ in 0..RUNS {
        delete_buckets(&js).await;
        create_buckets(&js).await;
        anchor_times.push(raw_pipelined_put(&js).await);
    }
    let anchor = median(anchor_times);
    let created = median(bursts.iter().map(|burst| burst.created).collect());
    let in_nats = median(bursts.iter().map(|burst| burst.all_in_nats).collect());
    let ready = median(bursts.iter().map(|burst| burst.all_ready).collect());
    let kib = |peak: fn(&crate::operator_burst::Burst) -> u64| {
        let mut peaks: Vec<u64> = bursts.iter().map(peak).collect();
        peaks.sort();
        peaks[peaks.len() / 2] as f64
    };
    let operator = kib(|burst| burst.operator_peak_kib);
    let reflector = kib(|burst| burst.reflector_peak_kib);
    let allowance = 1.3 * reflector + 2.0 * objects as f64;
    let mib = |kib: f64| kib / 1024.0;
    vec![
        Row {
            id: "B5",
            workload: format!(
                "operator: {entries} entries in {BUCKETS} buckets applied at once until all Ready (median of {BURST_RUNS})"
            ),
            kvop: format!(
                "{:.1} s to all Ready, {:.1} s to all in NATS",
                ready.as_secs_f64(),
                in_nats.as_secs_f64()
            ),
            anchor: format!(
                "{:.0} ms (raw pipelined put of {KEYS} keys); the apiserver took {:.1} s to accept the creates",
                anchor.as_secs_f64() * 1000.0,
                created.as_secs_f64()
            ),
            ratio: ready.as_secs_f64() / anchor.as_secs_f64(),
            target: "report",
            met: true,
        },
        time_to_ready(&bursts, entries, "as a cluster comes"),
        time_to_ready(
            &admitted,
            entries,
            "with the chart's cleanupFinalizerPolicy",
        ),
        Row {
            id: "B5",
            workload: format!("… operator peak RSS (VmHWM) over {objects} objects"),
            kvop: format!("{:.1} MiB", mib(operator)),
            anchor: format!(
                "{:.1} MiB (bare kube-rs reflector); allowance 1.3× + 2 KiB/object = {:.1} MiB",
                mib(reflector),
                mib(allowance)
            ),
            ratio: operator / allowance,
            target: "≤ 1.3× reflector + 2 KiB/object",
            met: operator <= allowance,
        },
    ]
}

/// B5's time to all Ready against the apiserver's own time to accept the creates, with
/// the operator's reconciles and writes per entry.
fn time_to_ready(bursts: &[crate::operator_burst::Burst], entries: usize, how: &str) -> Row {
    let created = median(bursts.iter().map(|burst| burst.created).collect());
    let ready = median(bursts.iter().map(|burst| burst.all_ready).collect());
    let per_entry = |count: fn(&crate::operator_burst::Burst) -> u64| {
        median_of(
            bursts
                .iter()
                .map(|burst| count(burst) as f64 / entries as f64),
        )
    };
    Row {
        id: "B5",
        workload: format!(
            "… {how}: time to all Ready against the apiserver's own time to accept the creates; {:.2} reconciles and {:.2} operator writes to the apiserver per entry",
            per_entry(|burst| burst.reconciles),
            per_entry(|burst| burst.operator_writes),
        ),
        kvop: format!("{:.1} s to all Ready", ready.as_secs_f64()),
        anchor: format!("{:.1} s to accept the creates", created.as_secs_f64()),
        ratio: ready.as_secs_f64() / created.as_secs_f64(),
        target: "≤ 1.5× the apiserver's create time",
        met: ready.as_secs_f64() <= 1.5 * created.as_secs_f64(),
    }
}

/// The median of some numbers.
fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}
