//! Fuzzes the manifest loader: it must never panic, every problem it reports must point
//! at a line of the input, and whatever it accepts must be valid desired state.
#![no_main]

use std::collections::HashSet;

use kvop::desired::Origin;
use kvop::manifest::{LoadOptions, load_str};
use kvop::names::{check_bucket_name, check_key};
use libfuzzer_sys::fuzz_target;

const SOURCE: &str = "fuzz.yaml";

/// The last line an error may name: YAML breaks lines at `\n`, `\r\n` and a lone `\r`,
/// and an error at the end of the input sits on the line after the last break.
fn last_line(text: &str) -> u64 {
    let breaks =
        text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    breaks as u64 + 1
}

/// The loader promises "file, line and field" for every problem (src/manifest/mod.rs).
fn assert_points_into(origin: &Origin, text: &str, what: &str) {
    assert_eq!(&*origin.source, SOURCE, "{what}");
    assert!(
        (1..=last_line(text)).contains(&origin.line),
        "{what}: line {} is outside 1..={}",
        origin.line,
        last_line(text)
    );
}

fuzz_target!(|text: &str| {
    let options = LoadOptions {
        manager: "kvop".into(),
    };
    match load_str(SOURCE, text, &options) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an Err without a single problem");
            for error in &errors.0 {
                assert_points_into(&error.origin, text, &error.to_string());
            }
        }
        Ok(loaded) => {
            let desired = &loaded.desired;
            let mut buckets = HashSet::new();
            for bucket in &desired.buckets {
                assert_points_into(&bucket.origin, text, &bucket.name);
                check_bucket_name(&bucket.name).expect("accepted bucket name");
                assert!(buckets.insert(bucket.name.as_str()), "{:?} twice", bucket.name);
            }
            let mut keys = HashSet::new();
            for entry in &desired.entries {
                assert_points_into(&entry.origin, text, &entry.key);
                check_key(&entry.key).expect("accepted key");
                assert!(
                    buckets.contains(&*entry.bucket),
                    "entry {:?} in undeclared bucket {:?}",
                    entry.key,
                    entry.bucket
                );
                assert!(
                    keys.insert((&entry.bucket, &entry.key)),
                    "key {:?} of {:?} twice",
                    entry.key,
                    entry.bucket
                );
            }
        }
    }
});
