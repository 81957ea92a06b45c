//! `--keys` filters: keys with NATS subject wildcards, as the KV API's `keys(filters)`
//! takes them (`app.>`, `*.config`, `exact/key`); and `--prefix`, a set's `keyPrefix`.

use crate::api::KEY_MAX_LEN;

/// A `--keys` value that is not a key filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--keys {filter:?} is not a key filter: {problem}")]
pub struct FilterError {
    pub filter: String,
    pub problem: FilterProblem,
}

/// What is wrong with a key filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterProblem {
    #[error("it is empty")]
    Empty,
    #[error("longer than {KEY_MAX_LEN} characters")]
    TooLong,
    #[error("a '.' starts, ends or repeats (empty token)")]
    EmptyToken,
    #[error("'>' may only be the last token")]
    TailNotLast,
    #[error(
        "it contains {0:?}; keys have letters, digits and '-/_=.', and '*' or '>' must be a whole token"
    )]
    Character(char),
}

/// Checks one filter: `.`-separated tokens of key characters (`-/_=a-zA-Z0-9`), where a
/// whole token may be `*` (any one token) and the last may be `>` (one or more tokens).
pub fn check_filter(filter: &str) -> Result<(), FilterError> {
    filter_problem(filter).map_or(Ok(()), |problem| {
        Err(FilterError {
            filter: filter.to_string(),
            problem,
        })
    })
}

fn filter_problem(filter: &str) -> Option<FilterProblem> {
    if filter.is_empty() {
        return Some(FilterProblem::Empty);
    }
    if filter.len() > KEY_MAX_LEN {
        return Some(FilterProblem::TooLong);
    }
    let tokens: Vec<&str> = filter.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        match *token {
            "" => return Some(FilterProblem::EmptyToken),
            "*" => {}
            ">" if index + 1 == tokens.len() => {}
            ">" => return Some(FilterProblem::TailNotLast),
            token => {
                if let Some(c) = token
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || "-/_=".contains(*c)))
                {
                    return Some(FilterProblem::Character(c));
                }
            }
        }
    }
    None
}

/// The longest `keyPrefix` a `KeyValueEntrySet` accepts.
const PREFIX_MAX_LEN: usize = 512;

/// A `--prefix` that a `KeyValueEntrySet` would refuse as its `keyPrefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--prefix {prefix:?} cannot be a keyPrefix: {problem}")]
pub struct PrefixError {
    pub prefix: String,
    pub problem: &'static str,
}

/// Checks `--prefix` by the rules of a set's `keyPrefix` (the CRD's, which
/// `spec::entry_set` applies to files too), plus non-empty: an empty prefix is no prefix.
pub fn check_prefix(prefix: &str) -> Result<(), PrefixError> {
    let problem = if prefix.is_empty() {
        Some("it is empty (leave --prefix out to export every key)")
    } else if prefix.len() > PREFIX_MAX_LEN {
        Some("longer than 512 characters")
    } else if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c))
    {
        Some("a key prefix may hold letters, digits and -/_=. only")
    } else if prefix.starts_with('.') || prefix.contains("..") {
        Some("a key prefix may not start with '.' nor contain '..'")
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| {
        Err(PrefixError {
            prefix: prefix.to_string(),
            problem,
        })
    })
}

/// The key filter that reads what a valid `prefix` may hold: its whole tokens (up to its
/// last `.`) and `>`; none, so every key, for a prefix within the first token. The keys
/// read are then cut to those that start with the prefix, which need not end a token.
pub fn prefix_filter(prefix: &str) -> Option<String> {
    prefix
        .rfind('.')
        .map(|last_dot| format!("{}>", &prefix[..=last_dot]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_the_key_prefix_rules_and_read_their_whole_tokens() {
        for good in ["app.", "checkout/", "a", "a.b-c_d=e/f"] {
            assert!(check_prefix(good).is_ok(), "{good:?}");
        }
        for bad in ["", ".a", "a..b", "a b", "a*", "a.>", &"k".repeat(513)] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(prefix_filter("app."), Some("app.>".to_string()));
        assert_eq!(prefix_filter("app.con"), Some("app.>".to_string()));
        assert_eq!(prefix_filter("a.b/c"), Some("a.>".to_string()));
        assert_eq!(prefix_filter("checkout/"), None);
        for prefix in ["app.", "app.con", "a.b/c.d"] {
            let filter = prefix_filter(prefix).expect("a filter");
            assert!(check_filter(&filter).is_ok(), "{filter:?}");
        }
    }

    #[test]
    fn filters_are_keys_with_whole_token_wildcards() {
        for good in [
            "a",
            "app.>",
            "*.config",
            "a.*.c",
            ">",
            "*",
            "x/y=z_1-2",
            "a.b.c",
        ] {
            assert!(check_filter(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a*",
            "a.>.b",
            ">.a",
            "a b",
            "ü",
            "a.b>",
            &"k".repeat(1025),
        ] {
            assert!(check_filter(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_filter("a.>.b").map_err(|error| error.problem),
            Err(FilterProblem::TailNotLast)
        );
        assert_eq!(
            check_filter("a b").map_err(|error| error.problem),
            Err(FilterProblem::Character(' '))
        );
    }
}
