//! Key claims in the operator: each entry holds the keys it wrote (their `Kvop-Owner`),
//! and another entry declaring a held key is refused, never written (see
//! `plan::ClaimScope`). What only the operator knows goes into the pass: which entry
//! refused this one before ([`remembered_refusal`]) and whether a holder is gone
//! (`holders`, so that its claim passes to the entry that declares the key now). What
//! the pass decided comes back here: a refusal is remembered and the holder learns of
//! its rivals.

use kube::runtime::reflector::ObjectRef as StoreRef;

use super::report::{EventSpec, Report};
use crate::desired::{ObjectRef, OwnerKind};
use crate::operator::context::Context;

/// The entry that refused `own` before and still declares the same key in the same
/// bucket, from this operator's memory of refusals (after a restart, the claim is again
/// the key's headers alone). The pass keeps `own` refused while a foreign write or
/// delete has erased the holder's claim headers (`plan::held_through_drift`).
pub(super) fn remembered_refusal(
    context: &Context,
    own: &ObjectRef,
    bucket: &str,
    key: &str,
) -> Option<ObjectRef> {
    let holder = context.rivals.holder_of(own)?;
    // A set holder's keys are not in its status: its claim is the key's headers alone.
    if holder.kind != OwnerKind::Resource {
        return None;
    }
    let entry = context
        .entries
        .get(&StoreRef::new(&holder.name).within(&holder.namespace))?;
    if entry.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = entry.status.as_ref()?;
    let declares = status.bucket.as_deref() == Some(bucket) && status.key.as_deref() == Some(key);
    declares.then_some(holder)
}

/// After `own` was decided: a refusal by a holder of this manager is recorded and the
/// holder told (once); no refusal forgets `own` as a rival and tells its former holders.
pub(super) fn note(context: &Context, own: &ObjectRef, refused_by: Option<&str>) {
    let holder = refused_by.and_then(ObjectRef::parse);
    match holder {
        Some(holder) => {
            if context.rivals.add(&holder, own) {
                requeue(context, &holder);
            }
        }
        None => {
            for holder in context.rivals.remove(own) {
                requeue(context, &holder);
            }
        }
    }
}

/// A holder that stays Ready says which entries were refused its key: in its `Ready`
/// message and as a Warning (aggregated into a series while it lasts).
pub(super) fn name_rivals(context: &Context, own: &ObjectRef, key: &str, report: &mut Report) {
    let rivals = context.rivals.of(own);
    if rivals.is_empty() || !report.verdict.ready {
        return;
    }
    let named = rivals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    report.verdict.message = format!(
        "{}; also declared by {named}, refused: the key is this entry's",
        report.verdict.message
    );
    report.events.push(EventSpec {
        warning: true,
        reason: "RivalDeclaration",
        note: format!(
            "key {key:?} is also declared by {named}; kvop refused it there, this entry holds the key"
        ),
    });
}

/// `own` is going: it is nobody's rival any more, and its rivals may take its key.
pub(super) fn forget(context: &Context, own: &ObjectRef) {
    for other in context
        .rivals
        .remove(own)
        .into_iter()
        .chain(context.rivals.release(own))
    {
        requeue(context, &other);
    }
}

fn requeue(context: &Context, object: &ObjectRef) {
    context.requeue(object);
}
