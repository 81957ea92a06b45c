//! Generated files must match what the code generates: `crds/` and every copy of it.

use std::path::Path;

#[test]
fn committed_crds_match_the_resource_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for dir in ["crds", "charts/kvop/crds"] {
        let dir = root.join(dir);
        if dir.ends_with("charts/kvop/crds") && !dir.exists() {
            continue;
        }
        for (name, crd) in kvop::crds::all() {
            let expected = kvop::crds::render(&crd).expect("render");
            let found = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            if found != expected {
                stale.push(dir.join(name).display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated CRDs: {stale:?}; regenerate with `cargo run -- crds --dir crds`"
    );
}

#[test]
fn printer_columns_show_what_kvop_reported_not_what_was_asked_for() {
    // A column read from the spec shows a value kvop refused (`ttl: 10ms`) as if it were
    // in effect; only `.status` says what the server holds.
    for (name, crd) in kvop::crds::all() {
        for version in &crd.spec.versions {
            for column in version.additional_printer_columns.iter().flatten() {
                let path = column.json_path.as_str();
                assert!(
                    path.starts_with(".status.") || path == ".metadata.creationTimestamp",
                    "{name}: column {} reads {path}, not .status",
                    column.name
                );
            }
        }
    }
}

#[test]
fn every_example_loads_and_plans_without_a_server() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let options = kvop::manifest::LoadOptions {
        manager: "kvop".into(),
    };
    let loaded = kvop::manifest::load(&[kvop::manifest::Input::Path(examples)], &options)
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert!(loaded.desired.buckets.len() >= 3 && loaded.desired.entries.len() >= 7);
    let plan_options = kvop::plan::PlanOptions {
        manager: "kvop".into(),
        prune: false,
    };
    let plan = kvop::plan::plan(&loaded.desired, &Default::default(), &plan_options);
    assert!(plan.problems().is_empty(), "{:?}", plan.problems());
    assert!(
        plan.buckets
            .iter()
            .all(|bucket| matches!(bucket.action, kvop::plan::BucketAction::Create { .. }))
    );
}
