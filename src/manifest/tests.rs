use super::*;

fn entries_text(count: usize, bad: Option<usize>) -> String {
    let mut text = String::from(
        "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueBucket\nmetadata:\n  name: b\nspec: {}\n",
    );
    for i in 0..count {
        let key = if Some(i) == bad {
            "bad..key".to_string()
        } else {
            format!("k{i}")
        };
        text.push_str(&format!("---\napiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: e{i}\nspec:\n  bucketRef: {{name: b}}\n  key: {key}\n  value: \"{i}\"\n"));
    }
    text
}

#[test]
fn large_inputs_checked_in_parallel_keep_declaration_order() {
    let loaded = load_str(
        "big.yaml",
        &entries_text(5_000, None),
        &LoadOptions {
            manager: "kvop".into(),
        },
    )
    .expect("valid");
    let keys: Vec<&str> = loaded
        .desired
        .entries
        .iter()
        .map(|entry| &*entry.key)
        .collect();
    assert_eq!(keys.len(), 5_000);
    assert!(
        keys.iter()
            .enumerate()
            .all(|(i, key)| *key == format!("k{i}")),
        "entries stay in file order"
    );
}

#[test]
fn large_inputs_checked_in_parallel_name_the_right_line() {
    let errors = load_str(
        "big.yaml",
        &entries_text(5_000, Some(4_321)),
        &LoadOptions {
            manager: "kvop".into(),
        },
    )
    .expect_err("one bad key");
    assert_eq!(errors.0.len(), 1);
    // Document 4,321 starts after the 5-line bucket and 4,321 entries of 9 lines.
    assert_eq!(errors.0[0].origin.line, 5 + 4_321 * 9 + 8, "{}", errors);
    assert_eq!(errors.0[0].field.as_deref(), Some("spec.key"));
}

/// What `kubectl get kvb,kve -o yaml` prints, trimmed.
const LIST: &str = "apiVersion: v1
kind: List
metadata:
  resourceVersion: \"\"
items:
- apiVersion: kvop.dev/v1alpha1
  kind: KeyValueBucket
  metadata:
    name: b
    namespace: apps
    resourceVersion: \"42\"
  spec:
    history: 3
- apiVersion: kvop.dev/v1alpha1
  kind: KeyValueEntry
  metadata:
    name: e
    namespace: apps
  spec:
    bucketRef:
      name: b
    key: k
    value: v
  status:
    revision: 7
";

#[test]
fn a_kubectl_list_declares_its_items() {
    let options = LoadOptions {
        manager: "kvop".into(),
    };
    let loaded = load_str("list.yaml", LIST, &options).expect("a List of our kinds");
    assert_eq!(loaded.desired.buckets.len(), 1);
    assert_eq!(loaded.desired.entries.len(), 1);
    assert_eq!(
        loaded.desired.entries[0].origin.line, 14,
        "the item's own line"
    );
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
}

#[test]
fn a_problem_in_a_list_item_names_the_items_line() {
    let options = LoadOptions {
        manager: "kvop".into(),
    };
    let errors = load_str("list.yaml", &LIST.replace("key: k", "key: a..b"), &options)
        .expect_err("a bad key");
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].origin.line, 22, "{errors}");
    assert_eq!(errors.0[0].field.as_deref(), Some("spec.key"));
}

#[test]
fn a_load_error_prints_as_a_problem_with_its_file_line_and_field() {
    let load = |line, field: Option<&str>| LoadError {
        origin: Origin {
            source: "m.yaml".into(),
            line,
        },
        field: field.map(Into::into),
        message: "bad".into(),
    };
    for (error, line) in [
        (load(3, Some("spec.history")), "m.yaml:3: spec.history: bad"),
        (load(0, None), "m.yaml: bad"),
    ] {
        assert_eq!(Problem::from(&error).to_string(), line);
    }
}
