//! The pass's **check**: what only the server knows, checked before the first write.

use crate::api::ManagementPolicy;
use crate::desired::Desired;
use crate::manifest::{Known, Limits, LoadError, check_writable};
use crate::observed::Observed;
use crate::plan::{ClaimScope, decide_entry};

/// Checks the entries against what only the server knows, before the first write:
/// whether a bucket is a mirror there, and whether each value that will be written fits,
/// with kvop's headers, the server's `max_payload` and the bucket's max value size (the
/// declared one for a managed bucket, whose config is applied before its keys; the
/// server's for one kvop only observes).
///
/// A value is checked only when the plan writes it (`kvop reconcile` and `--watch` plan
/// with [`ClaimScope::Manager`]): a key that already holds it, or that its update policy
/// leaves, is never refused. NATS took that value without kvop's headers, so it can sit
/// within their size of a limit, or over a limit lowered since; an exported bucket must
/// still reconcile to nothing.
pub fn check_against_server(
    desired: &Desired,
    observed: &Observed,
    manager: &str,
    max_payload: usize,
) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for entry in &desired.entries {
        let declared = desired.buckets.iter().find(|bucket| {
            *bucket.name == *entry.bucket && bucket.management == ManagementPolicy::Manage
        });
        let seen = observed.buckets.get(&*entry.bucket);
        let stream = seen.and_then(|bucket| bucket.stream.as_ref());
        let written = decide_entry(
            entry,
            seen.and_then(|bucket| bucket.keys.get(&*entry.key)),
            manager,
            ClaimScope::Manager,
        )
        .writes();
        let max_value_size = match (declared, stream) {
            (Some(bucket), _) => bucket.config.max_value_size,
            (None, Some(stream)) => stream.config.max_value_size,
            (None, None) => -1,
        };
        let limits = Limits {
            bucket: &entry.bucket,
            mirror: stream
                .is_some_and(|stream| stream.config.mirror.is_some())
                .then_some(Known::OnServer),
            max_value_size: if written { max_value_size } else { -1 },
            max_payload: written.then_some(max_payload),
        };
        if let Err(unwritable) = check_writable(entry, &limits, manager) {
            errors.push(LoadError {
                origin: entry.origin.clone(),
                field: Some(unwritable.field.into()),
                message: unwritable.message,
            });
        }
    }
    errors
}
