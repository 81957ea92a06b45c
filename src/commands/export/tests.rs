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
        b"null",
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

#[test]
fn many_keys_are_written_in_order_with_their_names_whatever_the_threads() {
    // Enough keys for the parallel path and chunks of every kind of value and name.
    let keys: Vec<(String, Bytes)> = (0..25_000)
        .map(|i| {
            let key = if i % 3 == 0 {
                format!("k{i:05}")
            } else {
                format!("K_{i:05}")
            };
            let value = match i % 4 {
                0 => Bytes::from(format!("text {i}")),
                1 => Bytes::from(format!("{{\"n\":{i}}}")),
                2 => Bytes::from(vec![0, 0xff, (i % 256) as u8]),
                _ => Bytes::from("1e3"),
            };
            (key, value)
        })
        .collect();
    let exported = |hashed: bool| -> Vec<super::entries::Exported<'_>> {
        keys.iter()
            .map(|(key, value)| super::entries::Exported {
                key,
                value,
                hashed_name: (hashed && key.starts_with('K'))
                    .then(|| format!("h-{key}").to_lowercase()),
            })
            .collect()
    };
    let entries = super::entries::Entries {
        bucket: "b",
        bucket_ref: "b".into(),
        namespace: None,
        json_values: true,
        keys: exported(true),
    };
    let mut written = Vec::new();
    entries.write_to(&mut written).expect("written");
    // The reference: one key at a time (one thread, one document per call).
    let mut expected = Vec::new();
    for one in exported(true) {
        let single = super::entries::Entries {
            keys: vec![one],
            ..entries_of(&entries)
        };
        single.write_to(&mut expected).expect("written");
    }
    assert!(written == expected, "the parallel writer changed the text");
    let text = String::from_utf8(written).expect("UTF-8");
    assert_eq!(text.matches("\n  jsonValue:").count(), 25_000 / 4);
    let hashed = (0..25_000).filter(|i| i % 3 != 0).count();
    assert_eq!(text.matches("\n  name: h-k_").count(), hashed);
}

fn entries_of<'a>(entries: &super::entries::Entries<'a>) -> super::entries::Entries<'a> {
    super::entries::Entries {
        bucket: entries.bucket,
        bucket_ref: entries.bucket_ref.clone(),
        namespace: entries.namespace,
        json_values: entries.json_values,
        keys: Vec::new(),
    }
}

#[test]
fn keys_are_sorted_by_their_bytes_in_one_thread_or_two() {
    let value = Bytes::new();
    for count in [0, 1, 9_999, 25_001] {
        // Distinct keys in a scrambled order (multiplying by an odd number mod 2^16).
        let texts: Vec<String> = (0..count)
            .map(|i: usize| format!("k.{}", (i * 40_503) % 65_536 + 65_536 * (i / 65_536)))
            .collect();
        let keys: Vec<(&str, &Bytes)> = texts.iter().map(|t| (t.as_str(), &value)).collect();
        let sorted: Vec<&str> = super::sort_by_key_text(keys)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let mut expected: Vec<&str> = texts.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(sorted, expected, "{count} keys");
    }
}
