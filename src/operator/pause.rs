//! What a paused object reports (`kvop.dev/paused: "true"`): kvop observes it and says
//! whether NATS holds what it declares, and what it would change, but changes nothing.

use super::status::{PAUSED, Verdict};
use crate::plan::{BucketAction, EntryAction};

/// An action a paused object would take, as far as readiness goes.
pub trait Pending {
    /// Whether NATS holds what the object declares without this action.
    fn holds(&self) -> bool;
    /// The change kvop would make, in words (`update the key`).
    fn would(&self, what: &str) -> Option<String>;
}

impl Pending for EntryAction {
    fn holds(&self) -> bool {
        matches!(
            self,
            EntryAction::Unchanged { .. } | EntryAction::Skip { .. }
        )
    }

    fn would(&self, what: &str) -> Option<String> {
        self.writes().then(|| format!("{} the {what}", self.verb()))
    }
}

impl Pending for BucketAction {
    fn holds(&self) -> bool {
        matches!(self, BucketAction::Unchanged | BucketAction::Observe)
    }

    fn would(&self, what: &str) -> Option<String> {
        self.writes().then(|| format!("{} the {what}", self.verb()))
    }
}

/// `Ready` while NATS holds the declaration anyway; `Synced=False` with
/// [`PAUSED`] in any case, naming what kvop would do once resumed.
pub fn verdict(action: &impl Pending, what: &str) -> Verdict {
    let ready = action.holds();
    let message = match action.would(what) {
        Some(change) => format!(
            "paused by kvop.dev/paused: kvop would {change}; it changes nothing in NATS until the annotation is removed"
        ),
        None => format!(
            "paused by kvop.dev/paused: it changes nothing in NATS until the annotation is removed{}",
            if ready {
                "; NATS holds the declaration"
            } else {
                ""
            }
        ),
    };
    Verdict {
        ready,
        reason: PAUSED,
        message,
        synced: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_paused_object_says_whether_nats_holds_it_and_what_kvop_would_do() {
        let unchanged = verdict(&EntryAction::Unchanged { revision: 3 }, "key");
        assert!(unchanged.ready && !unchanged.synced);
        assert_eq!(unchanged.reason, PAUSED);
        let update = verdict(
            &EntryAction::Update {
                expected_revision: 3,
                value: Bytes::from_static(b"v"),
                drift: None,
            },
            "key",
        );
        assert!(!update.ready);
        assert!(
            update.message.contains("kvop would update the key"),
            "{}",
            update.message
        );
    }
}
