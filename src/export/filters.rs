//! `--keys` filters: keys with NATS subject wildcards, as the KV API's `keys(filters)`
//! takes them (`app.>`, `*.config`, `exact/key`).

use crate::api::KEY_MAX_LEN;

/// Checks one filter: `.`-separated tokens of key characters (`-/_=a-zA-Z0-9`), where a
/// whole token may be `*` (any one token) and the last may be `>` (one or more tokens).
pub fn check_filter(filter: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("--keys {filter:?} is not a key filter: {why}"));
    if filter.is_empty() {
        return bad("it is empty");
    }
    if filter.len() > KEY_MAX_LEN {
        return bad(&format!("longer than {KEY_MAX_LEN} characters"));
    }
    let tokens: Vec<&str> = filter.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        match *token {
            "" => return bad("a '.' starts, ends or repeats (empty token)"),
            "*" => {}
            ">" if index + 1 == tokens.len() => {}
            ">" => return bad("'>' may only be the last token"),
            token => {
                if let Some(c) = token
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || "-/_=".contains(*c)))
                {
                    return bad(&format!(
                        "it contains {c:?}; keys have letters, digits and '-/_=.', and '*' or '>' must be a whole token"
                    ));
                }
            }
        }
    }
    Ok(())
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
    }
}
