//! What every reconcile shares: clients, caches, views, settings, metrics.

use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;

use super::backoff::Backoff;
use super::bucket_view::BucketViews;
use crate::api::{KeyValueBucket, KeyValueEntry};
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
}

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    /// The default connection, for buckets without `spec.connection`.
    pub nats: Connection,
    pub default_connection: ConnectionSettings,
    /// Connections of buckets with `spec.connection`.
    pub pool: Pool,
    pub settings: Settings,
    pub buckets: Store<KeyValueBucket>,
    pub entries: Store<KeyValueEntry>,
    pub views: BucketViews,
    pub backoff: Backoff,
    pub metrics: Arc<Metrics>,
    /// Aggregates repeated events into series; it remembers every event for six
    /// minutes, so events that happen once per object go through [`Context::publish_once`].
    pub recorder: Recorder,
    pub reporter: Reporter,
}

impl Context {
    /// Publishes a Kubernetes Event about `object`; a failure is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::debug!(%error, "could not publish an event");
        }
    }

    /// Publishes an event that happens once in an object's life (its key first written).
    /// It skips the shared recorder's cache: nothing repeats to aggregate, and with
    /// 10,000 new entries that cache alone held about 26 MiB for six minutes.
    pub async fn publish_once<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
            tracing::debug!(%error, "could not publish an event");
        }
    }
}
