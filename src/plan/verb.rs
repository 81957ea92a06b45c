//! The verb of each decision, as a type. Reports, logs and the outcome's count of writes
//! tell verbs apart with an exhaustive `match`, so a new verb fails to compile where it
//! must be worded or counted instead of falling through a `_` arm of strings.

use std::fmt;

/// What a bucket's decision does, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BucketVerb {
    Create,
    Update,
    Unchanged,
    Blocked,
    Observe,
    Missing,
    Refused,
}

/// What a key's decision does, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryVerb {
    Create,
    Update,
    Unchanged,
    Conflict,
    Skip,
    Delete,
    Purge,
    Retain,
    Wait,
}

impl BucketVerb {
    /// Whether the action writes to NATS.
    pub fn writes(self) -> bool {
        match self {
            BucketVerb::Create | BucketVerb::Update => true,
            BucketVerb::Unchanged
            | BucketVerb::Blocked
            | BucketVerb::Observe
            | BucketVerb::Missing
            | BucketVerb::Refused => false,
        }
    }

    /// The word of the JSON report (`docs/report.schema.json`) and of log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            BucketVerb::Create => "create",
            BucketVerb::Update => "update",
            BucketVerb::Unchanged => "unchanged",
            BucketVerb::Blocked => "blocked",
            BucketVerb::Observe => "observe",
            BucketVerb::Missing => "missing",
            BucketVerb::Refused => "refused",
        }
    }
}

impl EntryVerb {
    /// Whether the action writes to NATS.
    pub fn writes(self) -> bool {
        match self {
            EntryVerb::Create | EntryVerb::Update | EntryVerb::Delete | EntryVerb::Purge => true,
            EntryVerb::Unchanged
            | EntryVerb::Conflict
            | EntryVerb::Skip
            | EntryVerb::Retain
            | EntryVerb::Wait => false,
        }
    }

    /// The word of the JSON report (`docs/report.schema.json`) and of log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryVerb::Create => "create",
            EntryVerb::Update => "update",
            EntryVerb::Unchanged => "unchanged",
            EntryVerb::Conflict => "conflict",
            EntryVerb::Skip => "skip",
            EntryVerb::Delete => "delete",
            EntryVerb::Purge => "purge",
            EntryVerb::Retain => "retain",
            EntryVerb::Wait => "wait",
        }
    }
}

impl fmt::Display for BucketVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EntryVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
