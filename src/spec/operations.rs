//! Annotations that steer the operator rather than declare state: pause an object, and
//! ask for a reconcile now. Both are read on every reconcile and never written by kvop.

use std::collections::BTreeMap;

use super::FieldProblem;

/// `"true"`: kvop makes no change in NATS for the object (no create, update or drift
/// repair) until the annotation is removed; it still observes and reports. Deleting the
/// object still carries out its `deletionPolicy`: a delete is a decision of its own.
pub const PAUSED_ANNOTATION: &str = "kvop.dev/paused";

/// Any new value asks for a reconcile now, past any retry backoff; the value handled
/// last is reported in `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "kvop.dev/reconcile-requested-at";

/// Flux's own annotation for the same request (`flux reconcile` sets it on Flux's
/// objects; people annotate other objects with it by habit): honoured as well.
pub const FLUX_REQUESTED_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Whether the object is paused.
pub fn paused(annotations: Option<&BTreeMap<String, String>>) -> Result<bool, FieldProblem> {
    super::flag(annotations, PAUSED_ANNOTATION)
}

/// The reconcile request the object carries, if any: kvop's annotation, else Flux's.
pub fn reconcile_requested(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    let annotations = annotations?;
    annotations
        .get(RECONCILE_REQUESTED_ANNOTATION)
        .or_else(|| annotations.get(FLUX_REQUESTED_ANNOTATION))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn paused_is_true_or_false_and_anything_else_is_a_problem() {
        assert_eq!(paused(None), Ok(false));
        assert_eq!(
            paused(Some(&annotated(&[(PAUSED_ANNOTATION, "true")]))),
            Ok(true)
        );
        assert_eq!(
            paused(Some(&annotated(&[(PAUSED_ANNOTATION, "false")]))),
            Ok(false)
        );
        assert!(paused(Some(&annotated(&[(PAUSED_ANNOTATION, "yes")]))).is_err());
    }

    #[test]
    fn kvops_own_request_wins_over_fluxs() {
        let both = annotated(&[
            (RECONCILE_REQUESTED_ANNOTATION, "a"),
            (FLUX_REQUESTED_ANNOTATION, "b"),
        ]);
        assert_eq!(reconcile_requested(Some(&both)).as_deref(), Some("a"));
        let flux = annotated(&[(FLUX_REQUESTED_ANNOTATION, "b")]);
        assert_eq!(reconcile_requested(Some(&flux)).as_deref(), Some("b"));
        assert_eq!(reconcile_requested(None), None);
    }
}
