//! Kubernetes object names for exported buckets and keys: the text itself when it is a
//! valid name, else a readable sanitized form plus a hash of the exact text. Names are a
//! function of the exported set only, so a re-export gives the same names.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::names::check_object_name;

/// The longest object name (a DNS-1123 subdomain).
const MAX_NAME_LEN: usize = 253;
/// Hex digits of the hash suffix; more only when two texts would get the same name.
const HASH_DIGITS: usize = 8;

/// One distinct object name per text, in order. `texts` must be distinct.
///
/// A text that is a valid name is its own name. Any other gets its sanitized form and
/// `-` and the first hex digits of its SHA-256: should that collide with another name of
/// the set, the suffix grows until it does not.
pub fn assign_names(texts: &[String]) -> Vec<String> {
    let valid: Vec<bool> = texts
        .iter()
        .map(|text| check_object_name(text).is_ok())
        .collect();
    let kept: HashSet<&str> = texts
        .iter()
        .zip(&valid)
        .filter(|(_, valid)| **valid)
        .map(|(text, _)| text.as_str())
        .collect();
    let mut made: HashSet<String> = HashSet::new();
    texts
        .iter()
        .zip(&valid)
        .map(|(text, valid)| {
            if *valid {
                return text.clone();
            }
            let hash = hex(&Sha256::digest(text.as_bytes()));
            let mut digits = HASH_DIGITS;
            loop {
                let name = hashed_name(text, &hash[..digits]);
                if digits == hash.len()
                    || (!kept.contains(name.as_str()) && made.insert(name.clone()))
                {
                    return name;
                }
                digits = (digits + 4).min(hash.len());
            }
        })
        .collect()
}

/// `text` lowercased, other characters as `-`, each `.`-part trimmed to start and end
/// with a letter or digit, cut to leave room for `-` and `hash`.
fn hashed_name(text: &str, hash: &str) -> String {
    let lowered: String = text
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    let room = MAX_NAME_LEN - 1 - hash.len();
    let mut base = tidy(&lowered);
    if base.len() > room {
        base = tidy(&base[..room]);
    }
    if base.is_empty() {
        format!("key-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

fn tidy(text: &str) -> String {
    text.split('.')
        .map(|part| part.trim_matches('-'))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(texts: &[&str]) -> Vec<String> {
        assign_names(&texts.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn valid_names_are_kept_and_others_get_a_readable_hashed_name() {
        let got = names(&["config.app", "config.App/DB_url", "B_1", "x._y", "cfg.-"]);
        assert_eq!(got[0], "config.app");
        assert!(got[1].starts_with("config.app-db-url-"), "{}", got[1]);
        assert!(got[2].starts_with("b-1-"), "{}", got[2]);
        assert!(got[3].starts_with("x.y-"), "{}", got[3]);
        assert!(got[4].starts_with("cfg-"), "{}", got[4]);
        for name in &got {
            check_object_name(name).expect("valid");
        }
    }

    #[test]
    fn names_are_deterministic_distinct_and_short_enough_for_any_key() {
        let long = format!("b.{}", "K/".repeat(600));
        let texts = ["b.a_b", "b.a-b", "b.A-B", "b.a=b", &long, "b.-", "b._"];
        let first = names(&texts);
        assert_eq!(first, names(&texts), "the same set gives the same names");
        let distinct: HashSet<&String> = first.iter().collect();
        assert_eq!(distinct.len(), texts.len(), "{first:?}");
        for name in &first {
            check_object_name(name).expect("valid");
        }
    }

    #[test]
    fn a_hashed_name_that_is_taken_grows_its_hash() {
        let hashed = names(&["b.a_b"])[0].clone();
        let got = names(&["b.a_b", &hashed]);
        assert_eq!(got[1], hashed, "the valid name is its own");
        assert_ne!(got[0], hashed);
        assert!(got[0].len() > hashed.len());
    }
}
