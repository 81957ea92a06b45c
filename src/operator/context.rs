//! What every reconcile shares: clients, caches, views, settings, metrics.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;

use super::backoff::Backoff;
use super::bucket_view::BucketViews;
use super::rivals::Rivals;
use super::secret_reads::ReadVersions;
use super::tenancy::Tenancy;
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use crate::metrics::Metrics;
use crate::nats::{Connection, ConnectionSettings, Pool};

/// Operator settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `Kvop-Manager` header of every write.
    pub manager: String,
    /// Full reconcile of every object at least this often (a safety net behind the views).
    pub resync_interval: Duration,
    /// Bucket statistics refresh period.
    pub status_interval: Duration,
    /// The one namespace watched (`--namespace`); `None`: all of them.
    pub namespace: Option<String>,
    /// How often referenced Secrets are checked for a new version.
    pub secret_refresh_interval: Duration,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    /// The default connection, for buckets without `spec.connection`.
    pub nats: Connection,
    pub default_connection: ConnectionSettings,
    /// Connections of buckets with `spec.connection` and of namespaces the tenants file
    /// gives an identity.
    pub pool: Pool,
    /// The administrator's tenancy settings.
    pub tenancy: Tenancy,
    pub settings: Settings,
    pub buckets: Store<KeyValueBucket>,
    pub entries: Store<KeyValueEntry>,
    /// Entry sets, which hold keys too (`holders`), and re-queued by what they read.
    pub entry_sets: Store<KeyValueEntrySet>,
    pub views: BucketViews,
    /// Entries refused because another entry holds their key, by holder.
    pub rivals: Rivals,
    /// The version of each referenced Secret that reconciles last read.
    pub secret_versions: ReadVersions,
    pub backoff: Backoff,
    pub metrics: Arc<Metrics>,
    /// One recorder per distinct event (object, type, reason and note), each of which
    /// aggregates the repeats of its event into a series. kube's recorder keys a series
    /// by object, type, reason and action only: with one shared recorder, a later Event
    /// with the same reason but another note just bumped the first one's count and kept
    /// its text (a bucket showed "updated history" x3 after updates of description and
    /// ttl). Entries are dropped once their series has ended (six minutes, as kube's).
    pub series: Mutex<EventSeries>,
    pub reporter: Reporter,
}

/// How long kube's recorder continues a series: a repeat after that starts a new Event.
const SERIES_TTL: Duration = Duration::from_secs(6 * 60);

/// How often ended series are dropped: not on every Event, which in a burst of
/// thousands of changes would scan every recorder each time.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The recorders of [`Context::series`], by event, with when each was last used.
#[derive(Default)]
pub struct EventSeries {
    recorders: HashMap<u64, (Recorder, Instant)>,
    swept: Option<Instant>,
}

impl Context {
    /// Re-queues a key's holder or rival: an entry or a set, as its written name says.
    pub fn requeue(&self, object: &crate::desired::ObjectRef) {
        use crate::desired::OwnerKind;
        use kube::runtime::reflector::ObjectRef as StoreRef;
        match object.kind {
            OwnerKind::Resource => self
                .views
                .requeue_entry(StoreRef::new(&object.name).within(&object.namespace)),
            OwnerKind::EntrySet => self
                .views
                .requeue_set(StoreRef::new(&object.name).within(&object.namespace)),
        }
    }

    /// [`Context::publish`] of a Warning or a Normal Event.
    pub async fn announce<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let type_ = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.publish(object, type_, reason, note).await;
    }

    /// Publishes a Kubernetes Event about `object`; a failure is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let reference = object.object_ref(&());
        log_event(&reference, type_ == EventType::Warning, reason, &note);
        let mut hasher = DefaultHasher::new();
        (
            &reference.uid,
            &reference.namespace,
            &reference.name,
            &reference.kind,
        )
            .hash(&mut hasher);
        (type_ == EventType::Warning, reason, &note).hash(&mut hasher);
        let recorder = {
            let mut series = self
                .series
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            if series
                .swept
                .is_none_or(|swept| now.duration_since(swept) >= SWEEP_EVERY)
            {
                series
                    .recorders
                    .retain(|_, (_, last)| now.duration_since(*last) < SERIES_TTL);
                series.swept = Some(now);
            }
            let (recorder, last) = series.recorders.entry(hasher.finish()).or_insert_with(|| {
                (
                    Recorder::new(self.client.clone(), self.reporter.clone()),
                    now,
                )
            });
            *last = now;
            recorder.clone()
        };
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::debug!(%error, "could not publish an event");
        }
    }
}

/// Every Event is also a log line, so `--log-level info` shows one line per change made
/// (warnings at warn): the log alone tells what kvop did.
fn log_event(
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    warning: bool,
    reason: &str,
    note: &str,
) {
    let object = format!(
        "{}/{}/{}",
        reference.kind.as_deref().unwrap_or_default(),
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name.as_deref().unwrap_or_default()
    );
    if warning {
        tracing::warn!(%object, reason, "{note}");
    } else {
        tracing::info!(%object, reason, "{note}");
    }
}
