//! The restricted line reader reads what it takes exactly as the spanned parse does, and
//! gives up everything else: the table of its subset's edges (see `super::block`).

use serde_json::{Value, json};

use super::agreement::Read::{self, Block, Fast, Spanned};
use super::agreement::both;

/// A manifest as kubectl and people write it: what the line reader is for.
const MANIFEST: &str = "---
# an entry
apiVersion: kvop.dev/v1alpha1
kind: KeyValueEntry
metadata:
  name: e-0-1
  labels:
    app.kubernetes.io/name: checkout   # why it is here
spec:
  bucketRef:
    name: bench0
  key: checkout/k1
  value: \"0000000001\"
  jsonValue:
    retries: 3
    ratio: 0.5
    enabled: true
    off: null
    empty:
    hosts:
    - a.example.com
    - 'b.example.com'
    ports:
      - name: http
        port: 80
      -
        name: https
";

#[test]
fn a_manifest_is_read_by_the_line_reader() {
    let (values, read) = both(MANIFEST).expect("a manifest");
    assert_eq!(read, Block);
    assert_eq!(
        values,
        [json!({
            "apiVersion": "kvop.dev/v1alpha1",
            "kind": "KeyValueEntry",
            "metadata": {"name": "e-0-1", "labels": {"app.kubernetes.io/name": "checkout"}},
            "spec": {
                "bucketRef": {"name": "bench0"},
                "key": "checkout/k1",
                "value": "0000000001",
                "jsonValue": {
                    "retries": 3,
                    "ratio": 0.5,
                    "enabled": true,
                    "off": null,
                    "empty": null,
                    "hosts": ["a.example.com", "b.example.com"],
                    "ports": [{"name": "http", "port": 80}, {"name": "https"}],
                },
            },
        })]
    );
    let (values, read) = both(&MANIFEST.replace('\n', "\r\n")).expect("CRLF");
    assert_eq!((values.len(), read), (1, Fast), "CRLF goes the fast way");
}

/// Documents at the edges of the subset: the value kvop reads and which reader.
#[test]
fn the_edges_of_the_subset_read_alike() {
    let cases: &[(&str, Value, Read)] = &[
        ("a: x   \n", json!({"a": "x"}), Block),
        ("a: 1", json!({"a": 1}), Block),
        ("--- # c\na: 1\n", json!({"a": 1}), Block),
        (
            "a: x\n  # deeper comment\nb: w\n",
            json!({"a": "x", "b": "w"}),
            Block,
        ),
        ("a:   # c\n  b: 1\n", json!({"a": {"b": 1}}), Block),
        (
            "a:\n- x\n- w\nb: 1\n",
            json!({"a": ["x", "w"], "b": 1}),
            Block,
        ),
        ("a:\n  - x\nb: 1\n", json!({"a": ["x"], "b": 1}), Block),
        (
            "- a:\n  - x\n  b: 1\n",
            json!([{"a": ["x"], "b": 1}]),
            Spanned,
        ),
        (
            "l:\n- a:\n  - x\n  b: 1\n- c\n",
            json!({"l": [{"a": ["x"], "b": 1}, "c"]}),
            Block,
        ),
        ("l:\n  -\n  - ~\n", json!({"l": [null, null]}), Block),
        ("a.b/c-d_e: 1\n", json!({"a.b/c-d_e": 1}), Block),
        ("a: x#y\n", json!({"a": "x#y"}), Block),
        ("a: x,y\n", json!({"a": "x,y"}), Block),
        (
            "a: \"x\\\\ \\\" \\/ \\n \\t\" # c\n",
            json!({"a": "x\\ \" / \n \t"}),
            Block,
        ),
        ("a: \"\\x41\"\n", json!({"a": "A"}), Fast),
        ("a: 'x ''y'' # z' # c\n", json!({"a": "x 'y' # z"}), Block),
        ("a: caf\u{e9}\n", json!({"a": "caf\u{e9}"}), Block),
        ("a: x\u{a0}\n", json!({"a": "x\u{a0}"}), Fast),
        ("a: --flag\n", json!({"a": "--flag"}), Block),
        ("a: -1\n", json!({"a": -1}), Block),
        ("a: -0\n", json!({"a": 0}), Block),
        ("a: 12 monkeys\n", json!({"a": "12 monkeys"}), Fast),
        ("a: x [w]\n", json!({"a": "x [w]"}), Fast),
        ("a: [1, 2]\n", json!({"a": [1, 2]}), Fast),
        ("a: |\n  x\n", json!({"a": "x\n"}), Fast),
        ("a: x\n  w\n", json!({"a": "x w"}), Fast),
        ("\"a\": 1\n", json!({"a": 1}), Fast),
        ("  a: 1\n", json!({"a": 1}), Fast),
        ("a: &x 1\nb: *x\n", json!({"a": 1, "b": 1}), Spanned),
        ("a: Yes\n", json!({"a": true}), Spanned),
        ("a: +inf\n", json!({"a": "+inf"}), Fast),
        ("l:\n- - x\n", json!({"l": [["x"]]}), Fast),
    ];
    let mut wrong = Vec::new();
    for (text, expected, path) in cases {
        match both(text) {
            Ok((values, read)) => {
                if values != std::slice::from_ref(expected) || read != *path {
                    wrong.push(format!("{text:?}: read {values:?} by {read:?}"));
                }
            }
            Err(message) => wrong.push(format!("{text:?}: refused: {message}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn what_the_line_reader_cannot_read_is_refused_by_the_spanned_parse() {
    for text in [
        "a: b: c\n",
        "a: x, v: z\n",
        "a: x:\n",
        "a: 1\na: 2\n",
        "a: 1\n- x\n",
        "a:\n  - x\n - y\n",
        "a:\n  b: 1\n c: 2\n",
        "a: 'x'y\n",
        "a: \"x\"y\n",
        "a: 'unclosed\n",
        "a: -\n",
        "null: 1\n",
    ] {
        assert!(both(text).is_err(), "{text:?}");
    }
}

#[test]
fn deep_block_nesting_reads_alike() {
    // The spanned parse needs a large stack unoptimized (see `deep_nesting_reads_alike`).
    let run = std::thread::Builder::new().stack_size(64 << 20).spawn(|| {
        for depth in [10, 47, 48, 49, 63, 64, 65] {
            let text: String = (0..depth)
                .map(|level| format!("{}k{level}:\n", "  ".repeat(level)))
                .collect();
            let result = both(&text);
            assert_eq!(result.is_ok(), depth <= 64, "{depth}: {result:?}");
            if depth <= 48 {
                assert_eq!(result.map(|(_, read)| read), Ok(Block), "{depth}");
            }
        }
    });
    run.expect("thread").join().expect("no disagreement");
}
