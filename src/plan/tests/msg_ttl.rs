//! Per-message TTL (`allowMsgTtl`): left out it is whatever the server has, declared it
//! is compared, and off is never planned over on (the server refuses it, 10052).

use std::time::Duration;

use super::{MANAGER, bucket, config, existing};
use crate::api::ManagementPolicy;
use crate::desired::{BucketConfig, Desired};
use crate::observed::ObservedKey;
use crate::plan::{BucketAction, BucketVerb, FieldChange, PlanOptions, plan};

/// The bucket's action when `declared` meets a stream that has `server`.
fn decide(declared: Option<bool>, markers: Option<u64>, server: bool) -> BucketAction {
    let declared = BucketConfig {
        allow_msg_ttl: declared,
        limit_marker_ttl: markers.map(Duration::from_secs),
        ..config()
    };
    let server = BucketConfig {
        allow_msg_ttl: Some(server),
        ..config()
    };
    let desired = Desired {
        buckets: vec![bucket(ManagementPolicy::Manage, declared)],
        entries: vec![],
        sets: Vec::new(),
    };
    let options = PlanOptions {
        manager: MANAGER.into(),
        prune: false,
    };
    let no_keys: Vec<(String, ObservedKey)> = Vec::new();
    plan(&desired, &existing(no_keys, server), &options).buckets[0]
        .action
        .clone()
}

fn change(from: &str, to: &str, immutable: bool) -> FieldChange {
    FieldChange {
        field: "allowMsgTtl",
        from: from.into(),
        to: to.into(),
        immutable,
    }
}

#[test]
fn per_message_ttl_is_planned_only_where_declared_and_never_turned_off() {
    let markers = FieldChange {
        field: "limitMarkerTtl",
        from: "none".into(),
        to: "5s".into(),
        immutable: false,
    };
    // (rule, declared, limit markers declared (s), the server has it, verb, changes)
    let rows = [
        (
            "left out, the server's off stays",
            None,
            None,
            false,
            BucketVerb::Unchanged,
            vec![],
        ),
        (
            "left out, a legacy bucket's on stays (nats.py turned it on)",
            None,
            None,
            true,
            BucketVerb::Unchanged,
            vec![],
        ),
        (
            "declared as the server has it: on",
            Some(true),
            None,
            true,
            BucketVerb::Unchanged,
            vec![],
        ),
        (
            "declared as the server has it: off",
            Some(false),
            None,
            false,
            BucketVerb::Unchanged,
            vec![],
        ),
        (
            "turning it on is an update",
            Some(true),
            None,
            false,
            BucketVerb::Update,
            vec![change("false", "true", false)],
        ),
        (
            "turning it off is blocked",
            Some(false),
            None,
            true,
            BucketVerb::Blocked,
            vec![change("true", "false", true)],
        ),
        (
            "limit markers on a legacy bucket change only the markers",
            Some(true),
            Some(5),
            true,
            BucketVerb::Update,
            vec![markers],
        ),
    ];
    for (rule, declared, markers, server, verb, expected) in rows {
        let action = decide(declared, markers, server);
        assert_eq!(action.verb(), verb, "{rule}: {action:?}");
        let changes = match &action {
            BucketAction::Update { changes, .. } | BucketAction::Blocked { changes } => {
                &changes[..]
            }
            _ => &[],
        };
        assert_eq!(changes, expected, "{rule}");
    }
}

#[test]
fn turning_per_message_ttl_off_is_explained_as_a_change_the_server_refuses() {
    let action = decide(Some(false), None, true);
    let explained = action.explain().expect("a blocked bucket is explained");
    assert!(
        explained.contains("allowMsgTtl true -> false") && explained.contains("server refuses"),
        "{explained}"
    );
    assert!(
        !action.writes(),
        "a blocked bucket writes nothing to its stream"
    );
}
