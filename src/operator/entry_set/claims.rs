//! Key claims of a set in the operator, as an entry's (`entry::claims`): a key another
//! kvop object holds is refused, never written. What the pass decided comes back here:
//! the set is remembered as the rival of each holder that refused one of its keys, and
//! each holder learns of it once (re-queued, so that it can name its rival); holders
//! that no longer refuse it are told too. Entries refused by a set are named in the
//! set's `Ready` message while it stays Ready.

use crate::desired::ObjectRef;
use crate::operator::context::Context;
use crate::operator::status::Verdict;

/// After `own` was decided: `refused_by` (written names) are its holders now.
pub(super) fn note(context: &Context, own: &ObjectRef, refused_by: &[String]) {
    let holders: Vec<ObjectRef> = refused_by
        .iter()
        .filter_map(|holder| ObjectRef::parse(holder))
        .collect();
    let before = context.rivals.remove(own);
    for holder in &holders {
        context.rivals.add(holder, own);
        if !before.contains(holder) {
            context.requeue(holder);
        }
    }
    for former in before.iter().filter(|former| !holders.contains(former)) {
        context.requeue(former);
    }
}

/// A set that stays Ready names the objects refused because it holds their keys.
pub(super) fn name_rivals(context: &Context, own: &ObjectRef, verdict: &mut Verdict) {
    let rivals = context.rivals.of(own);
    if rivals.is_empty() || !verdict.ready {
        return;
    }
    let named = rivals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    verdict.message = format!(
        "{}; {named} also declare keys of this set and were refused: the keys are this set's",
        verdict.message
    );
}

/// Re-queues the objects `own` refused: it let go of keys, maybe theirs.
pub(super) fn wake_rivals(context: &Context, own: &ObjectRef) {
    for rival in context.rivals.of(own) {
        context.requeue(&rival);
    }
}

/// `own` is going: it is nobody's rival any more, and its rivals may take its keys.
pub(super) fn forget(context: &Context, own: &ObjectRef) {
    for other in context
        .rivals
        .remove(own)
        .into_iter()
        .chain(context.rivals.release(own))
    {
        context.requeue(&other);
    }
}
