//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
    health: &'static str,
}

/// The healths an object can be in, as `kvop_objects` labels them.
pub const HEALTHS: [&str; 4] = ["ready", "progressing", "stalled", "paused"];

/// Counts the operator's objects as (kind, health, count), at scrape time.
pub type ObjectCounter = Box<dyn Fn() -> Vec<(&'static str, &'static str, i64)> + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    op: &'static str,
    outcome: &'static str,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    operations: Family<OperationLabels, Counter>,
    drift_corrections: Counter,
    leader: Gauge,
    objects: Family<ObjectLabels, Gauge>,
    object_counter: Mutex<Option<ObjectCounter>>,
    /// `kvop reconcile --watch` only.
    watch: Option<WatchMetrics>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// What only the Kubernetes-free watch reports: whether the files in force are the
/// files on disk.
struct WatchMetrics {
    reloads: Family<ReloadLabels, Counter>,
    manifests_valid: Gauge,
    /// Seconds since a change to the files was first seen that is not in force yet.
    pending_seconds: Gauge<f64, AtomicU64>,
    /// 1 while that has lasted longer than `stale_after`.
    stale: Gauge,
    stale_after: Duration,
    /// Since when, and what the change waits for.
    pending: Mutex<Option<(Instant, String)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kvop");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let operations = Family::<OperationLabels, Counter>::default();
        let drift_corrections = Counter::default();
        let leader = Gauge::default();
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Failed reconciles, by kind and reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration, by kind",
            duration.clone(),
        );
        registry.register(
            "nats_operations",
            "NATS operations, by operation and outcome",
            operations.clone(),
        );
        registry.register(
            "drift_corrections",
            "Keys restored after someone else changed them",
            drift_corrections.clone(),
        );
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "objects",
            "The operator's objects by kind and health (ready, progressing, stalled, paused), as their conditions say",
            objects.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader Lease and reconciles, 0 while it stands by",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciles,
            failures,
            duration,
            operations,
            drift_corrections,
            leader,
            objects,
            object_counter: Mutex::new(None),
            watch: None,
        }
    }

    /// The operator's metrics and the watch's own; changes to the files not in force
    /// after `stale_after` make the process unready.
    pub fn for_watch(stale_after: Duration) -> Metrics {
        let mut metrics = Metrics::new();
        let watch = WatchMetrics {
            reloads: Family::default(),
            manifests_valid: Gauge::default(),
            pending_seconds: Gauge::default(),
            stale: Gauge::default(),
            stale_after,
            pending: Mutex::new(None),
        };
        metrics.registry.register(
            "watch_reloads",
            "Reloads of the manifest files, by result (applied, invalid)",
            watch.reloads.clone(),
        );
        metrics.registry.register(
            "watch_manifests_valid",
            "1 while the files on disk are valid and in force, 0 while the last valid ones are kept in force instead",
            watch.manifests_valid.clone(),
        );
        metrics.registry.register(
            "watch_files_pending_seconds",
            "How long a change to the files has waited to be put in force (0: the files in force are the files on disk)",
            watch.pending_seconds.clone(),
        );
        metrics.registry.register(
            "watch_files_stale",
            "1 while a change to the files has waited longer than --stale-after (then /readyz fails too)",
            watch.stale.clone(),
        );
        // A watch is the only writer of its files: it always leads.
        metrics.set_leader(true);
        metrics.watch = Some(watch);
        metrics
    }

    /// The files changed and the change is not in force yet: it waits for `why`. The
    /// first call after [`Metrics::files_in_force`] starts the clock.
    pub fn files_pending(&self, why: &str) {
        if let Some(watch) = &self.watch {
            let mut pending = watch
                .pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            match &mut *pending {
                Some((_, reason)) => why.clone_into(reason),
                None => *pending = Some((Instant::now(), why.to_string())),
            }
        }
    }

    /// The files in force are the files on disk.
    pub fn files_in_force(&self) {
        if let Some(watch) = &self.watch {
            *watch
                .pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = None;
        }
    }

    /// Why the process is not ready although connected: a change to the files has waited
    /// longer than `--stale-after`, and what it waits for.
    pub fn stale(&self) -> Option<String> {
        let watch = self.watch.as_ref()?;
        let pending = watch
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (since, why) = pending.as_ref()?;
        let waited = since.elapsed();
        (waited > watch.stale_after).then(|| {
            format!(
                "the files changed {} s ago and the change is not in force: {why}",
                waited.as_secs()
            )
        })
    }

    /// Counts the objects with `counter` at every scrape (the stores of the controllers
    /// running now: a new term of leadership brings new ones).
    pub fn count_objects_with(&self, counter: ObjectCounter) {
        *self
            .object_counter
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(counter);
    }

    /// Brings the gauges that measure time or count objects up to now (before a scrape).
    fn refresh(&self) {
        let counter = self
            .object_counter
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(counter) = counter.as_ref() {
            for kind in ["KeyValueBucket", "KeyValueEntry"] {
                for health in HEALTHS {
                    self.objects
                        .get_or_create(&ObjectLabels { kind, health })
                        .set(0);
                }
            }
            for (kind, health, count) in counter() {
                self.objects
                    .get_or_create(&ObjectLabels { kind, health })
                    .set(count);
            }
        }
        if let Some(watch) = &self.watch {
            let pending = watch
                .pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let waited = pending
                .as_ref()
                .map_or(Duration::ZERO, |(since, _)| since.elapsed());
            watch.pending_seconds.set(waited.as_secs_f64());
            watch
                .stale
                .set(i64::from(waited > watch.stale_after && pending.is_some()));
        }
    }

    /// The watch reloaded its files: `applied`, or `invalid` (the last valid files stay in
    /// force).
    pub fn reloaded(&self, result: &'static str) {
        if let Some(watch) = &self.watch {
            watch.reloads.get_or_create(&ReloadLabels { result }).inc();
            watch.manifests_valid.set(i64::from(result == "applied"));
        }
    }

    /// One reconcile of `kind` took `seconds`.
    pub fn reconciled(&self, kind: &'static str, seconds: f64) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.duration
            .get_or_create(&KindLabels { kind })
            .observe(seconds);
    }

    /// One reconcile of `kind` failed for `reason`.
    pub fn failed(&self, kind: &'static str, reason: &'static str) {
        self.failures
            .get_or_create(&FailureLabels { kind, reason })
            .inc();
    }

    /// One NATS operation (`write`, `read`, `create_bucket`, ...) ended with `outcome`.
    pub fn nats_operation(&self, op: &'static str, outcome: &'static str) {
        self.operations
            .get_or_create(&OperationLabels { op, outcome })
            .inc();
    }

    pub fn drift_corrected(&self) {
        self.drift_corrections.inc();
    }

    /// This instance started or stopped leading (always leading without leader election).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        self.refresh();
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
