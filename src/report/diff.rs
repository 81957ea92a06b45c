//! `kvop diff` (and `reconcile --dry-run --diff`): what the plan would change, old →
//! new, for every bucket field and every key, so a reviewer reads a pull request's
//! effect as `terraform plan` or `kubectl diff` shows it. Text values as a unified line
//! diff, JSON values pretty-printed first, anything else as hex; a value from a Secret
//! masked on both sides (the old value in NATS may be the Secret's old value). Made from
//! the plan and what it was made from, never a pipeline of its own.

use base64::Engine;
use bytes::Bytes;
use serde::Serialize;

use super::line_diff::{Line, diff};
use crate::observed::{Observed, Operation};
use crate::plan::{BucketAction, EntryAction, Plan};

/// What a masked value shows instead of itself, as `kubectl diff` does for Secrets.
const MASK: &str = "***";

/// Bytes per line of a hex dump.
const HEX_WIDTH: usize = 16;

/// The differences between the declarations and NATS.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// Bucket changes plus key changes: 0 means NATS already matches.
    pub differences: usize,
    pub buckets: Vec<BucketDiff>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Create,
    Update,
    Delete,
    /// A bucket change the server refuses: reported, never written.
    Blocked,
    /// A bucket that stays as it is (listed for its keys).
    None,
}

/// How a key's `old` and `new` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    /// Both sides parse as a JSON object or array: pretty-printed.
    Json,
    /// Not UTF-8: base64 in JSON output, hex in text.
    Binary,
    /// Declared from a Secret: each side present is `***`.
    Masked,
}

#[derive(Debug, Serialize)]
pub struct BucketDiff {
    pub bucket: String,
    pub action: Change,
    pub fields: Vec<FieldDiff>,
    pub keys: Vec<KeyDiff>,
}

#[derive(Debug, Serialize)]
pub struct FieldDiff {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct KeyDiff {
    pub key: String,
    pub action: Change,
    pub format: Format,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The differences `plan` would make to what `observed` holds.
pub fn diff_of(plan: &Plan, observed: &Observed) -> Diff {
    let mut buckets = Vec::new();
    let mut differences = 0;
    for bucket in &plan.buckets {
        let (action, changes) = match &bucket.action {
            BucketAction::Create { .. } => (Change::Create, &[][..]),
            BucketAction::Update { changes, .. } => (Change::Update, &changes[..]),
            BucketAction::Blocked { changes } => (Change::Blocked, &changes[..]),
            _ => (Change::None, &[][..]),
        };
        let keys_held = observed.buckets.get(&bucket.bucket).map(|seen| &seen.keys);
        let old_value = |key: &str| {
            keys_held
                .and_then(|keys| keys.get(key))
                .filter(|last| last.operation == Operation::Put)
                .map(|last| last.value.clone())
        };
        let keys: Vec<KeyDiff> = bucket
            .entries
            .iter()
            .filter_map(|entry| {
                let (action, old, new) = match &entry.action {
                    EntryAction::Create { value, .. } => {
                        (Change::Create, None, Some(value.clone()))
                    }
                    EntryAction::Update { value, .. } => {
                        (Change::Update, old_value(&entry.key), Some(value.clone()))
                    }
                    EntryAction::Remove { .. } => (Change::Delete, old_value(&entry.key), None),
                    _ => return None,
                };
                // Declared from a Secret now, or written from one before (a key no
                // longer declared, pruned: its old value is a Secret's).
                let written_from_secret = keys_held
                    .and_then(|keys| keys.get(&*entry.key))
                    .is_some_and(|last| last.writer.sensitive);
                if written_from_secret || entry.sensitive {
                    return Some(masked(&entry.key, action, old.is_some(), new.is_some()));
                }
                Some(key_diff(&entry.key, action, old.as_ref(), new.as_ref()))
            })
            .collect();
        differences += keys.len() + usize::from(action != Change::None);
        if action == Change::None && keys.is_empty() {
            continue;
        }
        buckets.push(BucketDiff {
            bucket: bucket.bucket.clone(),
            action,
            fields: changes
                .iter()
                .map(|change| FieldDiff {
                    field: change.field,
                    from: change.from.clone(),
                    to: change.to.clone(),
                })
                .collect(),
            keys,
        });
    }
    Diff {
        differences,
        buckets,
    }
}

/// A key whose value comes from a Secret: that it changes, never what to.
fn masked(key: &str, action: Change, old: bool, new: bool) -> KeyDiff {
    KeyDiff {
        key: key.to_string(),
        action,
        format: Format::Masked,
        old: old.then(|| MASK.to_string()),
        new: new.then(|| MASK.to_string()),
    }
}

fn key_diff(key: &str, action: Change, old: Option<&Bytes>, new: Option<&Bytes>) -> KeyDiff {
    let texts: Option<Vec<&str>> = [old, new]
        .into_iter()
        .flatten()
        .map(|value| std::str::from_utf8(value).ok())
        .collect();
    let Some(texts) = texts else {
        let encode = |value: &Bytes| base64::engine::general_purpose::STANDARD.encode(value);
        return KeyDiff {
            key: key.to_string(),
            action,
            format: Format::Binary,
            old: old.map(encode),
            new: new.map(encode),
        };
    };
    // JSON on every side present: compared pretty-printed, so one changed field is one
    // changed line however the value was written.
    let pretty: Option<Vec<String>> = texts
        .iter()
        .map(|text| {
            let value: serde_json::Value = serde_json::from_str(text).ok()?;
            (value.is_object() || value.is_array())
                .then(|| serde_json::to_string_pretty(&value).ok())
                .flatten()
        })
        .collect();
    let text = |value: &Bytes| String::from_utf8_lossy(value).into_owned();
    match pretty {
        Some(mut pretty) => {
            let new = new.and_then(|_| pretty.pop());
            let old = old.and_then(|_| pretty.pop());
            KeyDiff {
                key: key.to_string(),
                action,
                format: Format::Json,
                old,
                new,
            }
        }
        None => KeyDiff {
            key: key.to_string(),
            action,
            format: Format::Text,
            old: old.map(text),
            new: new.map(text),
        },
    }
}

/// The diff as text: `+` created, `~` changed, `-` deleted, `!` refused by the server.
pub fn render(diff: &Diff) -> String {
    let mut out = String::new();
    for bucket in &diff.buckets {
        let (mark, note) = match bucket.action {
            Change::Create => ("+", " (created)"),
            Change::Update => ("~", ""),
            Change::Blocked => ("!", " (the server cannot change these; nothing is written)"),
            Change::Delete | Change::None => (" ", ""),
        };
        out.push_str(&format!("{mark} bucket {}{note}\n", bucket.bucket));
        for field in &bucket.fields {
            out.push_str(&format!(
                "    {}: {} → {}\n",
                field.field, field.from, field.to
            ));
        }
        for key in &bucket.keys {
            render_key(&mut out, &bucket.bucket, key);
        }
    }
    out.push_str(&match diff.differences {
        0 => "No differences: NATS matches the manifests.\n".to_string(),
        1 => "1 difference.\n".to_string(),
        count => format!("{count} differences.\n"),
    });
    out
}

fn render_key(out: &mut String, bucket: &str, key: &KeyDiff) {
    let mark = match key.action {
        Change::Create => "+",
        Change::Delete => "-",
        Change::Update | Change::Blocked | Change::None => "~",
    };
    let format = match key.format {
        Format::Json => " (JSON, pretty-printed)",
        Format::Binary => " (binary, hex)",
        Format::Masked => " (from a Secret, masked)",
        Format::Text => "",
    };
    out.push_str(&format!("{mark} {bucket}/{}{format}\n", key.key));
    if key.format == Format::Masked {
        // Both sides are `***`: a line diff would find them equal and show nothing.
        for (side, shown) in [("-", &key.old), ("+", &key.new)] {
            if let Some(mask) = shown {
                out.push_str(&format!("    {side}   {mask}\n"));
            }
        }
        return;
    }
    let shown = |value: &Option<String>| -> Vec<String> {
        match (value, key.format) {
            (None, _) => Vec::new(),
            (Some(encoded), Format::Binary) => hex_lines(
                &base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default(),
            ),
            (Some(text), _) => text.lines().map(str::to_string).collect(),
        }
    };
    let (old, new) = (shown(&key.old), shown(&key.new));
    let old: Vec<&str> = old.iter().map(String::as_str).collect();
    let new: Vec<&str> = new.iter().map(String::as_str).collect();
    for line in diff(&old, &new) {
        let text = match line {
            Line::Same(text) => format!("        {text}"),
            Line::Removed(text) => format!("    -   {text}"),
            Line::Added(text) => format!("    +   {text}"),
            Line::Skipped(count) => format!("        ... {count} unchanged line(s)"),
        };
        out.push_str(text.trim_end());
        out.push('\n');
    }
}

/// `0000  00 01 02 …  |...|`: offset, bytes, and the printable ones.
fn hex_lines(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(HEX_WIDTH)
        .enumerate()
        .map(|(row, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|byte| format!("{byte:02x}")).collect();
            let printable: String = chunk
                .iter()
                .map(|&byte| {
                    if byte.is_ascii_graphic() || byte == b' ' {
                        byte as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!(
                "{:04x}  {:<width$}  |{printable}|",
                row * HEX_WIDTH,
                hex.join(" "),
                width = HEX_WIDTH * 3 - 1
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Bytes {
        Bytes::from(text.to_string())
    }

    #[test]
    fn json_values_are_compared_pretty_printed() {
        let key = key_diff(
            "limits",
            Change::Update,
            Some(&bytes(r#"{"rate":100,"burst":5}"#)),
            Some(&bytes(r#"{"burst": 5, "rate": 200}"#)),
        );
        assert_eq!(key.format, Format::Json);
        let mut out = String::new();
        render_key(&mut out, "b", &key);
        assert!(out.contains("    -     \"rate\": 100\n"), "{out}");
        assert!(out.contains("    +     \"rate\": 200\n"), "{out}");
        assert!(
            out.contains("          \"burst\": 5,\n"),
            "the unchanged field is context, not a change: {out}"
        );
    }

    #[test]
    fn binary_values_are_shown_as_hex_and_text_as_lines() {
        let binary = key_diff(
            "logo",
            Change::Create,
            None,
            Some(&Bytes::from_static(&[0, 1, 0xff])),
        );
        assert_eq!(
            (binary.format, binary.new.as_deref()),
            (Format::Binary, Some("AAH/"))
        );
        let mut out = String::new();
        render_key(&mut out, "b", &binary);
        assert!(out.contains("+   0000  00 01 ff"), "{out}");
        let text = key_diff("banner", Change::Delete, Some(&bytes("one\ntwo")), None);
        assert_eq!(text.format, Format::Text);
        let mut out = String::new();
        render_key(&mut out, "b", &text);
        assert_eq!(out, "- b/banner\n    -   one\n    -   two\n");
    }
}
