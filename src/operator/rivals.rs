//! The operator's memory of refused key declarations: which entries were refused because
//! another entry holds the key they declare, by holder. Shared by every reconcile (it
//! lives in the [`super::context::Context`]); `entry::claims` decides what goes in.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::desired::ObjectRef;

/// Refused entries by the holder of the key they declare.
#[derive(Default)]
pub struct Rivals {
    by_holder: Mutex<HashMap<ObjectRef, BTreeSet<ObjectRef>>>,
}

impl Rivals {
    /// Records `rival` as refused by `holder`; whether that is news.
    pub(super) fn add(&self, holder: &ObjectRef, rival: &ObjectRef) -> bool {
        let mut by_holder = self.by_holder.lock().unwrap_or_else(|p| p.into_inner());
        by_holder
            .entry(holder.clone())
            .or_default()
            .insert(rival.clone())
    }

    /// Forgets `rival` wherever it was refused; the holders that had it.
    pub(super) fn remove(&self, rival: &ObjectRef) -> Vec<ObjectRef> {
        let mut by_holder = self.by_holder.lock().unwrap_or_else(|p| p.into_inner());
        let mut holders = Vec::new();
        by_holder.retain(|holder, rivals| {
            if rivals.remove(rival) {
                holders.push(holder.clone());
            }
            !rivals.is_empty()
        });
        holders
    }

    /// The holder that refused `rival`, if one did.
    pub(super) fn holder_of(&self, rival: &ObjectRef) -> Option<ObjectRef> {
        let by_holder = self.by_holder.lock().unwrap_or_else(|p| p.into_inner());
        by_holder
            .iter()
            .find(|(_, rivals)| rivals.contains(rival))
            .map(|(holder, _)| holder.clone())
    }

    /// The entries refused because `holder` holds their key.
    pub(super) fn of(&self, holder: &ObjectRef) -> Vec<ObjectRef> {
        let by_holder = self.by_holder.lock().unwrap_or_else(|p| p.into_inner());
        by_holder
            .get(holder)
            .map(|rivals| rivals.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets `holder`'s rivals (it is being deleted); they may take the key over now.
    pub(super) fn release(&self, holder: &ObjectRef) -> Vec<ObjectRef> {
        let mut by_holder = self.by_holder.lock().unwrap_or_else(|p| p.into_inner());
        by_holder
            .remove(holder)
            .map(|rivals| rivals.into_iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> ObjectRef {
        ObjectRef::resource("ns", name)
    }

    #[test]
    fn a_rival_is_news_once_and_forgotten_with_every_holder_it_had() {
        let rivals = Rivals::default();
        assert!(rivals.add(&object("a"), &object("b")));
        assert!(!rivals.add(&object("a"), &object("b")), "told once");
        assert!(rivals.add(&object("c"), &object("b")));
        assert_eq!(rivals.of(&object("a")), [object("b")]);
        let mut holders = rivals.remove(&object("b"));
        holders.sort();
        assert_eq!(holders, [object("a"), object("c")]);
        assert!(rivals.of(&object("a")).is_empty());
        assert!(rivals.add(&object("a"), &object("d")));
        assert_eq!(rivals.release(&object("a")), [object("d")]);
        assert!(rivals.of(&object("a")).is_empty());
    }
}
