//! Whether the holder of a claim is gone: a claim of this manager whose object no
//! longer exists, or is being deleted, passes on to the next declaration (a renamed
//! object, a claim left behind by `deletionPolicy: Retain`). One rule for buckets and
//! keys, answered from the operator's watch caches for the pass ([`Holders`]). A set's
//! claim (`namespace/KeyValueEntrySet/name`) is looked up among the sets, whichever kind
//! asks: a key a set wrote may be declared by an entry, and the other way round.

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

use super::context::Context;
use crate::api::{KeyValueBucket, KeyValueEntry};
use crate::desired::OwnerKind;
use crate::pass::Holders;

/// The holders of one kind's claims, as this operator's cache of that kind sees them.
pub struct Watched<'a, K: Resource<DynamicType = ()> + Clone + 'static> {
    context: &'a Context,
    store: &'a Store<K>,
}

impl<'a> Watched<'a, KeyValueEntry> {
    /// Entries, which hold keys.
    pub fn entries(context: &'a Context) -> Self {
        Watched {
            context,
            store: &context.entries,
        }
    }
}

impl<'a> Watched<'a, KeyValueBucket> {
    /// Bucket resources, which hold buckets.
    pub fn buckets(context: &'a Context) -> Self {
        Watched {
            context,
            store: &context.buckets,
        }
    }
}

impl<K> Holders for Watched<'_, K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    async fn gone(&self, owner: &str) -> bool {
        let Some(holder) = crate::desired::ObjectRef::parse(owner) else {
            return false;
        };
        match holder.kind {
            OwnerKind::Resource => gone(self.context, self.store, &holder).await,
            OwnerKind::EntrySet => gone(self.context, &self.context.entry_sets, &holder).await,
        }
    }
}

/// Whether `holder` is absent from `store` (the store of its kind: a set's key is never
/// released by an absent entry of the set's name, nor the other way round) or being
/// deleted. An owner outside the namespace this operator watches is never gone (it
/// cannot see it), and the cache must hold the whole first list before an absence
/// means anything.
async fn gone<K>(context: &Context, store: &Store<K>, holder: &crate::desired::ObjectRef) -> bool
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (namespace, name) = (holder.namespace.as_str(), holder.name.as_str());
    let watched = context.settings.namespace.as_deref();
    if watched.is_some_and(|watched| watched != namespace) {
        return false;
    }
    if store.wait_until_ready().await.is_err() {
        return false;
    }
    store
        .get(&ObjectRef::<K>::new(name).within(namespace))
        .is_none_or(|holder| holder.meta().deletion_timestamp.is_some())
}
