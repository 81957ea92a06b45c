//! serde-saphyr's errors in the words of a manifest's author, with file lines only: its
//! own rendering names Rust types and options (`Depth { depth: 65 }`, "set
//! DuplicateKeyPolicy in Options") and counts lines from the start of the document it
//! was given, which is not the file's line when the document is not the first.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Error, Location, MessageFormatter, UserMessageFormatter};

use super::SyntaxError;

/// `error` from parsing text that starts on line `offset + 1` of its file.
pub(super) fn syntax_error(error: &Error, offset: u64) -> SyntaxError {
    let outer = error.without_snippet();
    let (inner, alias) = match outer {
        Error::AliasError {
            error, locations, ..
        } => (error.without_snippet(), Some(locations.defined_location)),
        other => (other, None),
    };
    let location = outer.location().filter(known);
    let mut message = words(inner);
    if let Some(location) = location {
        message.push_str(&format!(" (column {})", location.column()));
    }
    if let Some(defined) = alias.filter(known) {
        message.push_str(&format!(
            ", through an alias of the anchor on line {}",
            defined.line() + offset
        ));
    }
    SyntaxError {
        line: location.map(|location| location.line() + offset),
        message,
    }
}

fn known(location: &Location) -> bool {
    location.line() > 0
}

fn words(error: &Error) -> String {
    match error {
        Error::Budget { breach, .. } => budget_words(breach),
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => ALIAS_BOMB.into(),
        Error::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate key {key:?}"),
        Error::DuplicateMappingKey { key: None, .. } => "duplicate key".into(),
        other => {
            let text = UserMessageFormatter.format_message(other);
            text.lines().next().unwrap_or_default().trim().to_string()
        }
    }
}

const ALIAS_BOMB: &str =
    "aliases expand to more than the parser allows: refused as a possible alias bomb";

fn budget_words(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::Aliases { .. } => ALIAS_BOMB.into(),
        BudgetBreach::Depth { depth } => format!(
            "nested {depth} levels deep, more than the parser allows ({})",
            depth.saturating_sub(1)
        ),
        BudgetBreach::Documents { documents } => {
            format!("more documents than the parser allows in one file ({documents})")
        }
        other => {
            // The variant's name in words: `ScalarBytes { .. }` → "scalar bytes".
            let debug = format!("{other:?}");
            let name = debug
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .chars()
                .fold(String::new(), |mut words, c| {
                    if c.is_ascii_uppercase() && !words.is_empty() {
                        words.push(' ');
                    }
                    words.push(c.to_ascii_lowercase());
                    words
                });
            format!("the document is larger or more complex than the parser allows ({name})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_documents;

    /// Every message names lines of the file and no Rust type or option.
    fn refused(text: &str) -> (u64, String) {
        let error = parse_documents(text).expect_err("refused");
        for internal in ["{", "Options", "Policy", "at line", "Option<"] {
            assert!(
                !error.message.contains(internal),
                "{internal:?} in {:?}",
                error.message
            );
        }
        (error.line.expect("a line"), error.message)
    }

    #[test]
    fn messages_are_in_the_authors_words_with_the_files_lines() {
        let later = |document: &str| format!("a: 1\n---\nb: 2\n---\n{document}");
        let (line, message) = refused(&later("x: 1\nx: 2\n"));
        assert_eq!(line, 6);
        assert!(message.starts_with("duplicate key \"x\""), "{message}");
        let (line, message) = refused(&later("a: [1\n"));
        assert_eq!(line, 5, "{message}");
        // Unoptimized, the spanned parse needs more than a test thread's stack for its
        // 64 levels (as in `agreement::deep_nesting_reads_alike`).
        let deep = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                let text = format!("a: {}{}\n", "[".repeat(70), "]".repeat(70));
                refused(&later(&text))
            })
            .expect("thread")
            .join()
            .expect("no panic");
        assert_eq!(deep.0, 5);
        assert!(deep.1.contains("levels deep"), "{}", deep.1);
        let (line, message) = refused(&later("a:\n\tb: 1\n"));
        assert_eq!(line, 6, "{message}");
        assert!(message.contains("tab"), "{message}");
    }
}
