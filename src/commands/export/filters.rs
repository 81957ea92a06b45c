//! `--keys` filters: keys with NATS subject wildcards, as the KV API's `keys(filters)`
//! takes them (`app.>`, `*.config`, `exact/key`).

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

#[cfg(test)]
mod tests {
    use super::*;

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
