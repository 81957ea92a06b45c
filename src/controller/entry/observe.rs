//! Step 2 of an entry reconcile: the key's last message, from the bucket's live view when
//! it is current, else from the stream leader; and a warning when the server lost a write
//! kvop had recorded.

use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::resolve::Resolved;
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntryStatus};
use crate::controller::context::Context;
use crate::nats::NatsError;
use crate::observed::ObservedKey;

/// The key's last message: from the bucket's live view when it is current, else from
/// the stream leader.
pub(super) async fn observe(
    context: &Context,
    entry: &KeyValueEntry,
    resolved: &Resolved,
) -> Result<Option<ObservedKey>, NatsError> {
    let reference = StoreRef::<KeyValueBucket>::new(&entry.spec.bucket_ref.name)
        .within(&entry.namespace().unwrap_or_default());
    if let Some(cached) = context
        .views
        .get(&reference)
        .and_then(|view| view.key(&resolved.entry.key))
    {
        return Ok(cached);
    }
    resolved
        .nats
        .bucket(&resolved.bucket.name)
        .read_key(&resolved.entry.key)
        .await
}

/// Warns when the key is at a lower revision than kvop recorded for it, in a stream
/// created before that record (a re-created bucket starts over legitimately): the server
/// lost an acknowledged write, e.g. restored from an older copy of its store. The write
/// that follows puts the declared value back.
pub(super) async fn warn_if_lost(
    context: &Context,
    entry: &KeyValueEntry,
    previous: &KeyValueEntryStatus,
    observed: Option<&ObservedKey>,
) {
    let recorded = previous
        .revision
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0);
    let now = observed.map_or(0, |key| key.revision);
    if recorded <= now {
        return;
    }
    let reference = StoreRef::<KeyValueBucket>::new(&entry.spec.bucket_ref.name)
        .within(&entry.namespace().unwrap_or_default());
    // The creation time of the stream the bucket's live view follows, not the bucket's
    // status: right after a bucket was deleted and created again (its revisions start
    // over, no rollback) the status may still name the old stream.
    let stream_created = context
        .views
        .get(&reference)
        .map(|view| view.created().to_string());
    let same_stream = match (stream_created, previous.created.as_deref()) {
        // RFC 3339 in UTC: ordered as text.
        (Some(stream), Some(recorded_at)) => stream.as_str() <= recorded_at,
        _ => false,
    };
    if same_stream {
        context
            .publish(
                entry,
                EventType::Warning,
                "ServerWentBackwards",
                format!(
                    "the key was at revision {recorded}, the server now has {now}: it lost writes (restored from an older copy of its store?); writing the declared value again"
                ),
            )
            .await;
    }
}
