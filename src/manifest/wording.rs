//! Serde's messages in the words of a manifest's author: YAML's names for types
//! (mapping, list, integer), never Rust's (`i32`, `struct KeyValueBucketSpec`).

/// A type error, worded for the author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    /// The error is about one field that can be set aside to read the others; not so for
    /// a missing field (nothing to set aside) or a document of the wrong shape.
    pub field_can_be_set_aside: bool,
}

/// Rust type names serde puts after "expected", and what they are in YAML.
const TYPE_NAMES: [(&str, &str); 16] = [
    ("i8", "an integer"),
    ("i16", "an integer"),
    ("i32", "an integer"),
    ("i64", "an integer"),
    ("i128", "an integer"),
    ("isize", "an integer"),
    ("u8", "an integer of 0 or more"),
    ("u16", "an integer of 0 or more"),
    ("u32", "an integer of 0 or more"),
    ("u64", "an integer of 0 or more"),
    ("u128", "an integer of 0 or more"),
    ("usize", "an integer of 0 or more"),
    ("f32", "a number"),
    ("f64", "a number"),
    ("a map", "a mapping"),
    ("a sequence", "a list"),
];

/// `message` (serde's) as the author should read it.
pub fn serde_message(message: &str) -> Message {
    let field_can_be_set_aside = !message.starts_with("missing field");
    let mut text = match message.rsplit_once(", expected ") {
        Some((head, expected)) => format!("{head}, expected {}", expected_words(expected)),
        None => message.to_string(),
    };
    if text.starts_with("invalid type:") && text.ends_with("expected a string") {
        // YAML 1.1, like kubectl, reads unquoted 100, true, yes, on, y as numbers and
        // booleans.
        text.push_str(" (quote the value to make it a string)");
    }
    Message {
        text,
        field_can_be_set_aside,
    }
}

fn expected_words(expected: &str) -> String {
    if let Some((_, words)) = TYPE_NAMES.iter().find(|(name, _)| *name == expected) {
        return (*words).to_string();
    }
    if expected.starts_with("struct ") || expected.starts_with("a map") {
        return "a mapping".into();
    }
    if let Some(inner) = expected
        .strip_prefix("Option<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        return expected_words(inner);
    }
    expected.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_yaml_words() {
        let cases = [
            (
                "invalid type: string \"abc\", expected i32",
                "invalid type: string \"abc\", expected an integer",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "invalid value: integer `-1`, expected an integer of 0 or more",
            ),
            (
                "invalid type: string \"x\", expected struct KeyValueBucketSpec",
                "invalid type: string \"x\", expected a mapping",
            ),
            (
                "invalid type: string \"x\", expected a sequence",
                "invalid type: string \"x\", expected a list",
            ),
            (
                "invalid type: integer `100`, expected a string",
                "invalid type: integer `100`, expected a string (quote the value to make it a string)",
            ),
            (
                "unknown variant `disk`, expected `File` or `Memory`",
                "unknown variant `disk`, expected `File` or `Memory`",
            ),
        ];
        for (serde, worded) in cases {
            let message = serde_message(serde);
            assert_eq!(message.text, worded);
            assert!(message.field_can_be_set_aside, "{serde}");
        }
        assert!(!serde_message("missing field `bucketRef`").field_can_be_set_aside);
    }
}
