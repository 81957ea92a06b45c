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

/// The apiserver's CEL value converter decodes `format: byte` strings as URL-safe base64
/// (kube-openapi#633): a CEL rule on any object above such a field refuses every
/// standard base64 value holding `+` or `/` ("illegal base64 data"). So no `format:
/// byte` field may sit below (or carry) an `x-kubernetes-validations` rule, in any kind.
#[test]
fn no_cel_rule_sits_above_a_byte_formatted_field() {
    fn walk(
        schema: &serde_json::Value,
        path: &str,
        under_rule: Option<&str>,
        found: &mut Vec<String>,
    ) {
        let Some(object) = schema.as_object() else {
            return;
        };
        let rule_here = object
            .get("x-kubernetes-validations")
            .and_then(|rules| rules.as_array())
            .is_some_and(|rules| !rules.is_empty());
        let under_rule = if rule_here { Some(path) } else { under_rule };
        if object.get("format").and_then(|format| format.as_str()) == Some("byte")
            && let Some(ruled) = under_rule
        {
            found.push(format!(
                "{path} (format: byte) under the CEL rule at {ruled}"
            ));
        }
        for (name, child) in object
            .get("properties")
            .and_then(|properties| properties.as_object())
            .into_iter()
            .flatten()
        {
            walk(child, &format!("{path}.{name}"), under_rule, found);
        }
        for nested in ["items", "additionalProperties"] {
            if let Some(child) = object.get(nested) {
                walk(child, &format!("{path}[{nested}]"), under_rule, found);
            }
        }
        for combinator in ["allOf", "anyOf", "oneOf"] {
            for child in object
                .get(combinator)
                .and_then(|children| children.as_array())
                .into_iter()
                .flatten()
            {
                walk(child, path, under_rule, found);
            }
        }
    }
    let mut found = Vec::new();
    for (name, crd) in kvop::crds::all() {
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(&version.schema).expect("schema");
            walk(&schema["openAPIV3Schema"], name, None, &mut found);
        }
    }
    assert!(found.is_empty(), "{found:#?}");
    // The walker itself finds the case it guards against.
    let planted = serde_json::json!({
        "x-kubernetes-validations": [{"rule": "true"}],
        "properties": {"spec": {"properties": {"data": {"type": "string", "format": "byte"}}}}
    });
    walk(&planted, "planted", None, &mut found);
    assert_eq!(
        found,
        ["planted.spec.data (format: byte) under the CEL rule at planted"]
    );
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
    let problems = kvop::report::plan_problems(&plan);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        plan.buckets
            .iter()
            .all(|bucket| matches!(bucket.action, kvop::plan::BucketAction::Create { .. }))
    );
}

/// docs/gitops.md's Argo CD health check and reason table are what
/// src/operator/reasons.rs generates. `KVOP_WRITE_GENERATED=1` rewrites them.
#[test]
fn the_gitops_docs_show_the_reason_table_the_code_uses() {
    use kvop::operator::reasons;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gitops.md");
    let text = std::fs::read_to_string(&path).expect("read docs/gitops.md");
    let blocks = [
        (
            "<!-- BEGIN GENERATED: argocd (src/operator/argocd.rs; tests/generated_files.rs) -->\n",
            "<!-- END GENERATED: argocd -->",
            format!("```yaml\n{}```\n", kvop::operator::argocd::config_map()),
        ),
        (
            "<!-- BEGIN GENERATED: reason table (src/operator/reasons.rs; tests/generated_files.rs) -->\n",
            "<!-- END GENERATED: reason table -->",
            reasons::markdown_table(),
        ),
    ];
    let mut expected = text.clone();
    for (begin, end, content) in &blocks {
        let start = expected.find(begin).expect("the block's start marker") + begin.len();
        let stop = start + expected[start..].find(end).expect("the block's end marker");
        expected.replace_range(start..stop, content);
    }
    if std::env::var_os("KVOP_WRITE_GENERATED").is_some() {
        std::fs::write(&path, &expected).expect("write docs/gitops.md");
        return;
    }
    assert!(
        text == expected,
        "docs/gitops.md is stale; regenerate with `KVOP_WRITE_GENERATED=1 cargo test --test generated_files`"
    );
}
