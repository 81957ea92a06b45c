//! Kubernetes object names for exported buckets and keys: the text itself when it is a
//! valid name, else a readable sanitized form plus a hash of the exact text. Names are a
//! function of the exported set only, so a re-export gives the same names.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::names::check_object_name;

/// The longest object name (a DNS-1123 subdomain).
const MAX_NAME_LEN: usize = 253;
/// Hex digits of the hash suffix; more only when two texts would get the same name.
const HASH_DIGITS: usize = 8;

/// The object names of a set of distinct texts. Most texts are their own name (every
/// key of a bucket whose keys are lowercase names), so only the others are kept.
#[derive(Debug, Default)]
pub struct Names {
    hashed: HashMap<usize, String>,
}

impl Names {
    /// The name of text `index`, given the text.
    pub fn of<'a>(&'a self, index: usize, text: &'a str) -> &'a str {
        self.hashed.get(&index).map_or(text, String::as_str)
    }

    /// Takes the hashed name of text `index` out, or `None` when the text is its own name.
    pub fn take(&mut self, index: usize) -> Option<String> {
        self.hashed.remove(&index)
    }
}

/// One distinct object name for each of `count` texts, which must be distinct;
/// `write_text(index, out)` appends text `index` to `out` (so that no text is allocated
/// just to be checked).
///
/// A text that is a valid name is its own name. Any other gets its sanitized form and
/// `-` and the first hex digits of its SHA-256: should that collide with another name of
/// the set, the suffix grows until it does not.
pub fn assign_names(count: usize, write_text: impl Fn(usize, &mut String)) -> Names {
    let mut text = String::new();
    let mut invalid: Vec<(usize, String)> = Vec::new();
    for index in 0..count {
        text.clear();
        write_text(index, &mut text);
        if check_object_name(&text).is_err() {
            invalid.push((index, text.clone()));
        }
    }
    if invalid.is_empty() {
        return Names::default();
    }
    let hashes: Vec<String> = invalid
        .iter()
        .map(|(_, text)| hex(&Sha256::digest(text.as_bytes())))
        .collect();
    let shortest: Vec<String> = invalid
        .iter()
        .zip(&hashes)
        .map(|((_, text), hash)| hashed_name(text, &hash[..HASH_DIGITS]))
        .collect();
    // Almost always no shortest name is taken: then those are the names, and the set of
    // every valid text (100,000 strings for a large bucket) is never built.
    let mut distinct: HashSet<&str> = HashSet::with_capacity(shortest.len());
    let mut clash = !shortest.iter().all(|name| distinct.insert(name));
    // A text equal to a hashed name is valid (hashed names are), so it is its own name.
    for index in 0..count {
        if clash {
            break;
        }
        text.clear();
        write_text(index, &mut text);
        clash = distinct.contains(text.as_str());
    }
    let names = if clash {
        grow_until_distinct(count, &write_text, &invalid, &hashes)
    } else {
        shortest
    };
    Names {
        hashed: invalid
            .into_iter()
            .map(|(index, _)| index)
            .zip(names)
            .collect(),
    }
}

/// The hashed names of the `invalid` texts, in order, each suffix grown until its name is
/// neither a valid text of the set nor the name of an earlier invalid text.
fn grow_until_distinct(
    count: usize,
    write_text: &impl Fn(usize, &mut String),
    invalid: &[(usize, String)],
    hashes: &[String],
) -> Vec<String> {
    let mut kept: HashSet<String> = HashSet::new();
    let mut text = String::new();
    for index in 0..count {
        text.clear();
        write_text(index, &mut text);
        if check_object_name(&text).is_ok() {
            kept.insert(text.clone());
        }
    }
    let mut made: HashSet<String> = HashSet::new();
    invalid
        .iter()
        .zip(hashes)
        .map(|((_, text), hash)| {
            let mut digits = HASH_DIGITS;
            loop {
                let name = hashed_name(text, &hash[..digits]);
                if digits == hash.len() || (!kept.contains(&name) && made.insert(name.clone())) {
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
        let names = assign_names(texts.len(), |index, out| out.push_str(texts[index]));
        (0..texts.len())
            .map(|index| names.of(index, texts[index]).to_string())
            .collect()
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
