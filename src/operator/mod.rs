//! `kvop run`: the Kubernetes operator. Three kube-runtime controllers (buckets, entries
//! and entry sets) drive the same observe → plan → apply code as `kvop reconcile`;
//! per-bucket live views re-queue entries and sets when their keys change out of band.

pub mod argocd;
pub mod backoff;
pub mod bucket;
mod bucket_changes;
mod bucket_ref;
pub mod bucket_view;
pub mod connection;
mod connectivity;
pub mod context;
mod crd_gone;
pub mod entry;
pub mod entry_set;
pub mod error;
mod finalizing;
mod holders;
pub mod leader;
mod object_counts;
pub mod pause;
pub mod reasons;
mod rivals;
mod secret_reads;
pub mod secret_refresh;
mod shutdown;
pub mod status;
pub mod tenancy;
mod tenants_file;
mod triggers;
mod watch_retry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use self::backoff::Backoff;
use self::bucket_view::BucketViews;
use self::context::{Context, Settings};
use self::error::{ControllerError, Retry};
use self::finalizing::FirstApply;
use self::shutdown::{AbortOnDrop, shutdown_signal};
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntrySet};
use crate::desired::{ObjectRef, Origin};
use crate::metrics::Metrics;
use crate::nats::{ConnectionSettings, NatsError, connect};
use crate::server::{Health, serve};

/// The finalizer on every kind.
pub const FINALIZER: &str = "kvop.dev/cleanup";

/// Reconciles running at once. Unbounded, a burst of 10,000 new entries opened
/// hundreds of apiserver connections at once (~45 KiB each) and answered no sooner:
/// every reconcile waits on the same apiserver and NATS connection (benchmark B5).
const ENTRY_CONCURRENCY: u16 = 32;
const BUCKET_CONCURRENCY: u16 = 8;
/// A set reconcile reads its bucket whole and writes many keys at once: fewer at a time.
const SET_CONCURRENCY: u16 = 8;

/// Everything `kvop run` was asked to do.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    pub connection: ConnectionSettings,
    pub settings: Settings,
    /// Which identity and bucket names each namespace gets, and where objects may
    /// point their own connections.
    pub tenancy: tenancy::Tenancy,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    pub metrics_address: SocketAddr,
    /// Lease-based leader election: `(lease namespace, lease name, identity)`.
    pub leader_election: Option<(String, String, String)>,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot configure Kubernetes access: {0}")]
    Config(#[source] kube::Error),
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    #[error("leadership lost")]
    LeadershipLost,
    #[error("metrics endpoint: {0}")]
    Server(#[source] std::io::Error),
}

/// Runs the operator until SIGTERM/SIGINT (graceful) or loss of leadership.
pub async fn run(options: OperatorOptions) -> Result<(), OperatorError> {
    let client = kube::Client::try_default()
        .await
        .map_err(OperatorError::Config)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health {
        ready: Default::default(),
        metrics: metrics.clone(),
    });
    let server = tokio::spawn(serve(options.metrics_address, health.clone()));
    // A reachable apiserver is what readiness means; NATS outages show in conditions.
    client.apiserver_version().await?;
    health.ready.store(true, Ordering::Release);
    // One listener for the rest of the run, registered now: once tokio handles a signal,
    // one that arrives while nothing listens is lost (a standby that becomes the leader
    // must not miss the SIGTERM that came meanwhile).
    let shutdown = shutdown_signal();

    let election = options
        .leader_election
        .as_ref()
        .map(|(namespace, name, identity)| {
            leader::LeaderElection::new(client.clone(), namespace, name, identity)
        });
    if let Some(election) = &election {
        tokio::select! {
            () = election.acquire() => {}
            // A standby has nothing to finish.
            () = shutdown.clone() => return Ok(()),
        }
    }
    metrics.set_leader(true);
    let nats = connect(&options.connection).await?;

    let buckets_api: Api<KeyValueBucket> = namespaced_or_all(&client, options.namespace.as_deref());
    let entries_api: Api<KeyValueEntry> = namespaced_or_all(&client, options.namespace.as_deref());
    let sets_api: Api<KeyValueEntrySet> = namespaced_or_all(&client, options.namespace.as_deref());
    let config_maps_api: Api<PartialObjectMeta<ConfigMap>> =
        namespaced_or_all(&client, options.namespace.as_deref());
    // Woken by what people change, never by kvop's own status writes (triggers).
    let (bucket_changes, bucket_store) = triggers::declared_changes(
        buckets_api.clone(),
        watcher::Config::default().any_semantic(),
        FirstApply::AfterFinalizer,
        |_| {},
    );
    let bucket_controller = Controller::for_stream(bucket_changes, bucket_store)
        .with_config(controller::Config::default().concurrency(BUCKET_CONCURRENCY));
    // Entries read their bucket from a store of their own, fed by the watch that
    // re-queues them (bucket_changes): it holds a change before the entries it re-queues
    // run. The bucket controller's store may lag that watch.
    let (entry_buckets, entry_buckets_writer) = reflector::store();
    // An entry without a finalizer (`Retain`) is gone without a cleanup: its departure
    // is heard from the watch, so the entries it refused may take its key at once.
    let (departures, departed) = futures::channel::mpsc::unbounded();
    let set_departures = departures.clone();
    let (entry_changes, entry_store) = triggers::declared_changes(
        entries_api,
        watcher::Config::default().any_semantic(),
        FirstApply::AfterFinalizer,
        move |entry: &KeyValueEntry| {
            let _ = departures.unbounded_send(object_ref(entry));
        },
    );
    let entry_controller = Controller::for_stream(entry_changes, entry_store)
        .with_config(controller::Config::default().concurrency(ENTRY_CONCURRENCY));
    let (set_changes, set_store) = triggers::declared_changes(
        sets_api,
        watcher::Config::default().any_semantic(),
        FirstApply::BeforeFinalizer,
        move |set: &KeyValueEntrySet| {
            let owner = ObjectRef::entry_set(set.namespace().unwrap_or_default(), set.name_any());
            let _ = set_departures.unbounded_send(owner);
        },
    );
    let set_controller = Controller::for_stream(set_changes, set_store)
        .with_config(controller::Config::default().concurrency(SET_CONCURRENCY));
    let (set_trigger, sets_triggered) = futures::channel::mpsc::unbounded();
    let (trigger, triggered) = futures::channel::mpsc::unbounded();
    let (bucket_trigger, buckets_triggered) = futures::channel::mpsc::unbounded();
    let reporter = Reporter {
        controller: "kvop".into(),
        instance: options
            .leader_election
            .as_ref()
            .map(|(_, _, identity)| identity.clone()),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        nats,
        default_connection: options.connection.clone(),
        pool: Default::default(),
        tenancy: options.tenancy.clone(),
        settings: options.settings.clone(),
        buckets: entry_buckets,
        entries: entry_controller.store(),
        entry_sets: set_controller.store(),
        views: BucketViews::new(
            trigger.clone(),
            bucket_trigger.clone(),
            entry_controller.store(),
            options.settings.manager.clone(),
        )
        .with_sets(set_trigger.clone(), set_controller.store()),
        rivals: Default::default(),
        secret_versions: Default::default(),
        backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(300)),
        metrics: metrics.clone(),
        series: Default::default(),
        reporter,
    });

    metrics.count_objects_with(object_counts::object_counts(
        bucket_controller.store(),
        entry_controller.store(),
        set_controller.store(),
    ));
    let _requeue_on_connectivity = AbortOnDrop(tokio::spawn(connectivity::requeue_on_change(
        context.nats.connectivity(),
        bucket_controller.store(),
        entry_controller.store(),
        bucket_trigger.clone(),
        trigger.clone(),
        (set_controller.store(), set_trigger.clone()),
    )));
    // Rotated Secrets are followed by name, never listed or watched (secret_refresh).
    let _follow_secrets = AbortOnDrop(tokio::spawn(secret_refresh::follow(
        context.clone(),
        bucket_trigger,
        trigger,
        set_trigger,
    )));
    let _forget_departed = AbortOnDrop(tokio::spawn(entry::forget_departed(
        context.clone(),
        departed,
    )));
    // The set controller hears of the same bucket and ConfigMap changes as the entries,
    // from the same watches (after the entries' bucket store has them): no second watch.
    let (buckets_to_sets, bucket_changes_for_sets) = futures::channel::mpsc::unbounded();
    let (config_maps_to_sets, config_map_changes_for_sets) = futures::channel::mpsc::unbounded();
    let entries = entry::wiring::run(
        entry_controller,
        entry::wiring::Wakers {
            // A bucket change its entries read (ready, spec, stream) re-queues them; its
            // statistics refreshes do not.
            bucket_changes: bucket_changes::for_entries(buckets_api, entry_buckets_writer)
                .inspect_ok(move |bucket: &KeyValueBucket| {
                    let _ = buckets_to_sets.unbounded_send(bucket.clone());
                }),
            config_map_changes: triggers::changed_metadata(config_maps_api).inspect_ok(
                move |config_map: &PartialObjectMeta<ConfigMap>| {
                    let _ = config_maps_to_sets.unbounded_send(config_map.clone());
                },
            ),
            triggered,
        },
        shutdown.clone(),
        context.clone(),
    );
    let sets = entry_set::wiring::run(
        set_controller,
        entry_set::wiring::Wakers {
            bucket_changes: bucket_changes_for_sets,
            config_map_changes: config_map_changes_for_sets,
            triggered: sets_triggered,
        },
        shutdown.clone(),
        context.clone(),
    );
    let buckets = bucket_controller
        // The server announced a change to the bucket's stream (see bucket_view).
        .reconcile_on(buckets_triggered)
        .graceful_shutdown_on(shutdown)
        .run(
            bucket::reconcile,
            error_policy::<KeyValueBucket>,
            context.clone(),
        )
        .for_each(|_| async {});
    let controllers = futures::future::join3(buckets, entries, sets);
    tracing::info!(
        namespace = options.namespace.as_deref().unwrap_or("<all>"),
        "kvop operator running"
    );
    let Some(election) = &election else {
        return tokio::select! {
            _ = controllers => Ok(()),
            result = server => Err(OperatorError::Server(server_error(result))),
        };
    };
    // The controllers end only on a shutdown signal, once their running reconciles have
    // finished; the lease is renewed until then.
    let stopped = tokio::select! {
        _ = controllers => Ok(()),
        () = election.hold() => Err(OperatorError::LeadershipLost),
        result = server => Err(OperatorError::Server(server_error(result))),
    };
    metrics.set_leader(false);
    if stopped.is_ok() {
        // Nothing of this instance writes any more, so the next leader may start now
        // rather than when the lease expires.
        election.release().await;
    }
    stopped
}

fn server_error(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Error {
    match result {
        Ok(Err(error)) => error,
        Ok(Ok(())) => std::io::Error::other("the metrics server stopped"),
        Err(error) => std::io::Error::other(error.to_string()),
    }
}

fn namespaced_or_all<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Maps a failure to its retry: wait for a change, a fixed delay, or per-object backoff.
fn error_policy<K: status::Reported + ResourceExt>(
    object: Arc<K>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    // The object changed while it was reconciled (a 409, or the 422 of a finalizer patch
    // whose test of the old list failed): the next attempt succeeds, nothing failed.
    if error.retry() != Retry::Stale {
        context.metrics.failed(K::KIND, error.reason());
    }
    let key = status::backoff_key(&*object);
    match error.retry() {
        Retry::OnChange => {
            tracing::info!(object = %key, reason = error.reason(), %error, "waiting for a spec change");
            Action::await_change()
        }
        Retry::After(delay) => {
            tracing::info!(object = %key, reason = error.reason(), %error, "retrying in {delay:?}");
            Action::requeue(delay)
        }
        Retry::Stale => {
            tracing::debug!(object = %key, %error, "the object changed meanwhile; reconciling again");
            Action::requeue(error::STALE_RETRY)
        }
        // A lost connection is reported once, by the connection itself; every object
        // waiting for it is not news.
        Retry::Backoff
            if matches!(error, ControllerError::Nats(NatsError::NotConnected { .. })) =>
        {
            let delay = context.backoff.next(&key);
            tracing::debug!(object = %key, %error, "retrying in {delay:?}");
            Action::requeue(delay)
        }
        Retry::Backoff => {
            let delay = context.backoff.next(&key);
            tracing::warn!(object = %key, reason = error.reason(), %error, "reconcile failed; retrying in {delay:?}");
            Action::requeue(delay)
        }
    }
}

/// `namespace/name` of a resource.
pub fn object_ref<K: ResourceExt>(object: &K) -> ObjectRef {
    ObjectRef::resource(
        object.namespace().unwrap_or_else(|| "default".into()),
        object.name_any(),
    )
}

/// Where a resource came from, for plans and errors.
pub fn origin<K: Resource<DynamicType = ()> + ResourceExt>(object: &K) -> Origin {
    Origin {
        source: format!("{}/{}", K::kind(&()), object_ref(object)).into(),
        line: 0,
    }
}

#[cfg(test)]
mod tests;
