//! Differential fuzzing of the YAML readers: a load that reads documents with the
//! restricted line reader and the fast parser (serde_yaml_ng) where they may, each alone
//! and both in turn, must read every input exactly as a load that parses every document
//! with spans (serde-saphyr): the same documents, values, document lines and field
//! lines, or the same error at the same line.
#![no_main]

use kvop::manifest::yaml::{Document, Paths, parse_documents_by, parse_documents_spanned};
use libfuzzer_sys::fuzz_target;

/// Everything a caller can see of a document (the value as JSON text, which also tells
/// `-0.0` from `0`).
fn seen(document: &Document) -> (u64, String, Vec<(&String, &u64)>) {
    (
        document.line,
        document.value.to_string(),
        document.lines().iter().collect(),
    )
}

fn check(text: &str) {
    let spanned = parse_documents_spanned(text);
    for paths in [Paths::All, Paths::BlockAndSpanned, Paths::FastAndSpanned] {
        let routed = parse_documents_by(text, paths);
        match (&routed, &spanned) {
            (Ok(routed), Ok(spanned)) => {
                let routed: Vec<_> = routed.iter().map(seen).collect();
                let spanned: Vec<_> = spanned.iter().map(seen).collect();
                assert_eq!(routed, spanned, "{paths:?} reads apart: {text:?}");
            }
            (Err(routed), Err(spanned)) => {
                assert_eq!(routed, spanned, "{paths:?} refuses apart: {text:?}")
            }
            _ => panic!(
                "accepted by one path only: {text:?}\n{paths:?}: {routed:?}\nspanned: {spanned:?}"
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Files reach the parsers as text (a file that is not UTF-8 is refused before):
    // other bytes still make inputs, with replacement characters.
    let text = String::from_utf8_lossy(data);
    check(&text);
    // The same document with Windows line breaks.
    if text.contains('\n') && !text.contains('\r') {
        check(&text.replace('\n', "\r\n"));
    }
});
