//! Where the entry controller reads its key, for the pass (`crate::pass::KeySource`): an
//! entry's key from the bucket's live view when it is current, else from the stream
//! leader, with a warning when the server lost a write kvop had recorded; a deleted
//! entry's key from the stream leader.

use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;

use super::resolve::Resolved;
use crate::api::{KeyValueBucket, KeyValueEntry, KeyValueEntryStatus};
use crate::nats::{Connection, NatsError};
use crate::observed::ObservedKey;
use crate::operator::context::Context;
use crate::pass::KeySource;

/// An entry's key as its reconcile reads it.
pub(super) struct LiveKey<'a> {
    pub context: &'a Context,
    pub entry: &'a KeyValueEntry,
    pub resolved: &'a Resolved,
    /// The status before this reconcile: the revision kvop recorded.
    pub previous: &'a KeyValueEntryStatus,
}

impl KeySource for LiveKey<'_> {
    async fn read(&self) -> Result<Option<ObservedKey>, NatsError> {
        let LiveKey {
            context,
            entry,
            resolved,
            previous,
        } = *self;
        let observed = observe(context, entry, resolved).await?;
        warn_if_lost(context, entry, resolved, previous, observed).await
    }
}

/// A deleted entry's key, read from the stream leader: its bucket's live view may be
/// gone with the bucket resource.
pub(super) struct LeaderKey<'a> {
    pub connection: &'a Connection,
    pub bucket: &'a str,
    pub key: &'a str,
}

impl KeySource for LeaderKey<'_> {
    async fn read(&self) -> Result<Option<ObservedKey>, NatsError> {
        match self.connection.bucket(self.bucket).read_key(self.key).await {
            // No bucket, no key: nothing left to remove.
            Err(error) if error.is_stream_not_found() => Ok(None),
            read => read,
        }
    }
}

/// The key's last message: from the bucket's live view when it is current, else from
/// the stream leader.
async fn observe(
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
/// that follows puts the declared value back. Returns the observation to decide on: a
/// live view may not have delivered kvop's own last write yet (it follows the write's
/// acknowledgement by a few milliseconds; about 1 new entry in 2,000 was reconciled in
/// that gap and warned falsely), so a lower revision is first read again from the
/// stream leader, and the fresher answer wins.
async fn warn_if_lost(
    context: &Context,
    entry: &KeyValueEntry,
    resolved: &Resolved,
    previous: &KeyValueEntryStatus,
    observed: Option<ObservedKey>,
) -> Result<Option<ObservedKey>, NatsError> {
    let recorded = previous
        .revision
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0);
    let revision = |key: &Option<ObservedKey>| key.as_ref().map_or(0, |key| key.revision);
    if recorded <= revision(&observed) {
        return Ok(observed);
    }
    let leader = resolved
        .nats
        .bucket(&resolved.bucket.name)
        .read_key(&resolved.entry.key)
        .await?;
    if !behind(recorded, revision(&leader)) {
        // The live view had not caught up with kvop's own write yet (a reconcile right
        // after the status recorded it): nothing was lost.
        tracing::debug!(
            entry = %crate::operator::object_ref(entry),
            recorded,
            view = revision(&observed),
            leader = revision(&leader),
            "the live view is behind the revision kvop recorded; the stream leader has it"
        );
        return Ok(leader);
    }
    let now = revision(&leader);
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
    Ok(leader)
}

/// Whether the stream leader is behind the revision kvop recorded: only then were
/// writes lost (a live view behind it is only late).
fn behind(recorded: u64, leader: u64) -> bool {
    leader < recorded
}

#[cfg(test)]
mod tests {
    use super::behind;

    #[test]
    fn only_a_leader_behind_the_record_has_lost_writes() {
        assert!(
            !behind(7, 7),
            "the leader has kvop's write: the view was late"
        );
        assert!(!behind(7, 9), "written since by someone");
        assert!(behind(7, 3), "the leader lost revisions 4 to 7");
    }
}
