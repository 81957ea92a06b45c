//! Rendered manifests read back through kvop's own loader as exactly what was exported.

use bytes::Bytes;

use super::render::{Meta, ValueField, bucket_document, entry_document};
use crate::desired::BucketConfig;
use crate::manifest::{LoadOptions, load_str};

/// Renders one bucket with `values` under keys `k0`, `k1`, ... and loads the text back.
fn round_trip(values: &[Vec<u8>], json_values: bool) -> Vec<Bytes> {
    let spec = super::bucket_spec("b", &BucketConfig::defaults()).expect("exportable");
    let mut text = String::new();
    bucket_document(
        &mut text,
        &Meta {
            name: "b",
            namespace: Some("team-a"),
        },
        &spec,
    );
    for (index, value) in values.iter().enumerate() {
        text.push_str("---\n");
        let name = format!("b.k{index}");
        let key = format!("k{index}");
        entry_document(
            &mut text,
            &Meta {
                name: &name,
                namespace: Some("team-a"),
            },
            "b",
            &key,
            &ValueField::of(value, json_values),
        );
    }
    let options = LoadOptions {
        manager: "kvop".into(),
    };
    let loaded = load_str("export.yaml", &text, &options)
        .unwrap_or_else(|errors| panic!("{errors}\n{text}"));
    assert_eq!(loaded.desired.buckets.len(), 1);
    assert_eq!(loaded.desired.buckets[0].config, BucketConfig::defaults());
    let mut entries = loaded.desired.entries;
    entries.sort_by_key(|entry| entry.key[1..].parse::<usize>().unwrap_or(0));
    entries.into_iter().map(|entry| entry.value).collect()
}

#[test]
fn text_binary_and_json_values_read_back_byte_for_byte() {
    let values: Vec<Vec<u8>> = [
        &b"plain"[..],
        b"",
        b"yes",
        b"017",
        b"1e3",
        b"line one\nline two\n",
        b"no final break\n  indented",
        b"trailing\n\n",
        b" leading space\nx",
        b"tab\tand\r\ncrlf",
        b"# not a comment",
        b"- not a list",
        b"key: not a map",
        b"{not: flow}",
        b"'single' \"double\" \\back",
        b"---\n...\n",
        "é ü 漢字 🦀".as_bytes(),
        "nel\u{85}ls\u{2028}bom\u{feff}".as_bytes(),
        b"\x00\x01\xff\xfe binary",
        b"\x7f",
        b"{\"a\":1,\"b\":[true,null,\"x\"]}",
        b"{\"b\":1,\"a\":2}",
        b"12345678901234567890",
        b"1e300",
        b"0.1",
        b"\"yes\"",
        b"[]",
        b"{}",
        b"{\"nested\":{\"z\":\"multi\\nline\\n\",\"a\":[{\"x\":1},[2]]}}",
    ]
    .iter()
    .map(|value| value.to_vec())
    .collect();
    for json_values in [false, true] {
        let back = round_trip(&values, json_values);
        for (value, back) in values.iter().zip(&back) {
            assert_eq!(
                &back[..],
                &value[..],
                "{:?} (json values {json_values})",
                String::from_utf8_lossy(value)
            );
        }
    }
}

#[test]
fn random_text_reads_back_byte_for_byte() {
    let alphabet: Vec<char> =
        "a Z0\n\t\r#:-\"'\\|>!&*%@`{}[],?~.=/é\u{85}\u{2028}\u{feff}\u{0}\u{7f}\u{a0}"
            .chars()
            .collect();
    // A fixed xorshift sequence: the same cases on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let values: Vec<Vec<u8>> = (0..2000)
        .map(|_| {
            let length = (next() % 12) as usize;
            (0..length)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    let back = round_trip(&values, false);
    for (value, back) in values.iter().zip(&back) {
        assert_eq!(
            &back[..],
            &value[..],
            "{:?}",
            String::from_utf8_lossy(value)
        );
    }
}
