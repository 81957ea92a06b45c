//! Where the set controller reads its bucket, for the pass (`crate::pass::BucketSource`):
//! whole, from the bucket's live view while it is current (a copy of what the view
//! holds: no request to NATS), else one sweep of the stream; a deleted set's bucket
//! always by a sweep, since its bucket resource and view may be gone.

use kube::runtime::reflector::ObjectRef as StoreRef;

use crate::api::KeyValueBucket;
use crate::nats::{Connection, NatsError};
use crate::observed::ObservedBucket;
use crate::operator::context::Context;
use crate::pass::BucketSource;

/// A set's bucket as its reconcile reads it.
pub(super) struct LiveBucket<'a> {
    pub context: &'a Context,
    /// The bucket resource, whose view is asked first.
    pub resource: StoreRef<KeyValueBucket>,
    pub connection: &'a Connection,
    /// The NATS bucket.
    pub bucket: &'a str,
}

impl BucketSource for LiveBucket<'_> {
    async fn read(&self) -> Result<ObservedBucket, NatsError> {
        let cached = self
            .context
            .views
            .get(&self.resource)
            .and_then(|view| view.snapshot());
        if let Some(keys) = cached {
            return Ok(ObservedBucket {
                stream: None,
                keys,
                complete: true,
            });
        }
        sweep(self.connection, self.bucket).await
    }
}

/// A deleted set's bucket, swept.
pub(super) struct SweptBucket<'a> {
    pub connection: &'a Connection,
    pub bucket: &'a str,
}

impl BucketSource for SweptBucket<'_> {
    async fn read(&self) -> Result<ObservedBucket, NatsError> {
        sweep(self.connection, self.bucket).await
    }
}

/// Every key's last message; a bucket that does not exist has none.
async fn sweep(connection: &Connection, bucket: &str) -> Result<ObservedBucket, NatsError> {
    connection
        .bucket(bucket)
        .observe(&[], &|_, _| None, true)
        .await
}
