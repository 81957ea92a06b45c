//! Fuzzes the bucket name and key validators against the NATS rules, re-stated here
//! from design.md and kv-semantics.md §5.2 rather than copied from src/names.rs.
#![no_main]

use kvop::names::{check_bucket_name, check_key};
use libfuzzer_sys::fuzz_target;

/// `^[a-zA-Z0-9_-]+$`, at most 252 bytes: the stream `KV_<name>` may have 255.
fn is_valid_bucket_name(name: &str) -> bool {
    (1..=252).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `^[-/_=.a-zA-Z0-9]+$`, no empty `.`-separated token (which also rules out a leading
/// or trailing `.` and `..`), at most 1024 bytes to stay under the 4 KiB control line.
fn is_valid_key(key: &str) -> bool {
    (1..=1024).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
        && key.split('.').all(|token| !token.is_empty())
}

fuzz_target!(|text: &str| {
    // Both directions: a validator that lets a bad name through breaks NATS calls later,
    // one that refuses a good name rejects a valid manifest.
    assert_eq!(
        check_bucket_name(text).is_ok(),
        is_valid_bucket_name(text),
        "bucket name {text:?}"
    );
    assert_eq!(check_key(text).is_ok(), is_valid_key(text), "key {text:?}");
});
