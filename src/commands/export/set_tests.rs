//! A rendered `KeyValueEntrySet` read back through kvop's own YAML reader and the shared
//! set rules (`spec::entry_set::set_keys`) as exactly the keys and bytes exported.

use bytes::Bytes;

use super::render::Meta;
use super::set::{SetKeys, set_document, under_prefix};
use crate::api::KeyValueEntrySet;
use crate::manifest::yaml::parse_documents;
use crate::spec::entry_set::{ObjectKind, SetObjects, set_keys};

/// An exported set reads no ConfigMap nor Secret.
struct NoObjects;

impl SetObjects for NoObjects {
    fn read(&mut self, kind: ObjectKind, name: &str) -> Result<Vec<(String, Bytes)>, String> {
        Err(format!("an exported set read {kind} {name}"))
    }
}

/// Renders `keys` (full keys, in byte order) as a set under `prefix` and reads it back:
/// the text, and each key with its value as the set declares it.
fn round_trip(
    keys: &[(&str, Bytes)],
    prefix: Option<&str>,
    json_values: bool,
) -> (String, Vec<(String, Bytes)>) {
    let borrowed: Vec<(&str, &Bytes)> = keys.iter().map(|(key, value)| (*key, value)).collect();
    let (items, _) = under_prefix(&borrowed, prefix);
    let mut text = String::new();
    set_document(
        &mut text,
        &Meta {
            name: "b",
            namespace: Some("team-a"),
        },
        &SetKeys {
            bucket_ref: "b",
            prefix,
            json_values,
            items,
        },
    );
    let documents = parse_documents(&text).unwrap_or_else(|error| panic!("{error:?}\n{text}"));
    assert_eq!(documents.len(), 1, "{text}");
    let set: KeyValueEntrySet = serde_json::from_value(documents[0].value.clone())
        .unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!(set.spec.bucket_ref.name, "b");
    assert_eq!(set.spec.key_prefix.as_deref(), prefix);
    let declared = set_keys(&set.spec, &mut NoObjects)
        .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"))
        .into_iter()
        .map(|key| (key.key, key.value))
        .collect();
    (text, declared)
}

fn values() -> Vec<(String, Bytes)> {
    let values: [&[u8]; 14] = [
        b"plain",
        b"",
        b"yes",
        b"line one\nline two\n",
        b"no final break\n  indented",
        b" leading space\nx",
        b"- not a list",
        "é 漢字 nel\u{85}".as_bytes(),
        b"\x00\x01\xff binary",
        b"{\"a\":1,\"b\":[true,null,\"x\",{\"m\":\"multi\\nline\\n\"}]}",
        b"{\"b\":1,\"a\":2}",
        b"1e300",
        b"12345678901234567890",
        b"null",
    ];
    values
        .iter()
        .enumerate()
        .map(|(index, value)| (format!("app.k{index:02}"), Bytes::from(value.to_vec())))
        .collect()
}

#[test]
fn every_kind_of_value_reads_back_byte_for_byte_as_set_items() {
    let keys = values();
    let borrowed: Vec<(&str, Bytes)> = keys.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    for json_values in [false, true] {
        let (text, declared) = round_trip(&borrowed, None, json_values);
        assert_eq!(declared, keys, "json values {json_values}:\n{text}");
        assert!(text.contains("  deletionPolicy: Retain\n"), "{text}");
        assert!(!text.contains("prune"), "the default, Owned: {text}");
        assert_eq!(text.contains("jsonValue:"), json_values, "{text}");
    }
}

#[test]
fn a_prefix_is_the_key_prefix_and_items_are_relative_to_it() {
    let value = Bytes::from("v");
    let keys: Vec<(&str, Bytes)> = ["app.", "app.a", "app.b/c", "apple", "db.x"]
        .into_iter()
        .map(|key| (key, value.clone()))
        .collect();
    let (text, declared) = round_trip(&keys, Some("app."), false);
    assert!(
        text.contains("  keyPrefix: app.\n  entries:\n  - key: a\n"),
        "{text}"
    );
    let declared: Vec<&str> = declared.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(declared, ["app.a", "app.b/c"]);

    let borrowed: Vec<(&str, &Bytes)> = keys.iter().map(|(key, value)| (*key, value)).collect();
    let (items, equal) = under_prefix(&borrowed, Some("app."));
    assert!(equal, "the key equal to the prefix is reported");
    assert_eq!(items.len(), 2);
    let (items, equal) = under_prefix(&borrowed, Some("app"));
    assert!(!equal);
    let relative: Vec<&str> = items.iter().map(|(key, _)| *key).collect();
    assert_eq!(
        relative,
        [".", ".a", ".b/c", "le"],
        "a prefix need not end a token"
    );
}
