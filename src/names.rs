//! The rules for bucket names, keys and manager names: the strictest union of what NATS
//! clients accept.

use crate::api::{BUCKET_NAME_MAX_LEN, KEY_MAX_LEN};

/// A bucket name NATS clients do not all accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketNameError {
    #[error("bucket name is empty")]
    Empty,
    #[error("bucket name is {length} characters long, the limit is {BUCKET_NAME_MAX_LEN}")]
    TooLong { length: usize },
    #[error("bucket name {name:?} contains {bad:?}: only letters, digits, '_' and '-' are allowed")]
    Character { name: String, bad: char },
}

/// Checks a bucket name: `[a-zA-Z0-9_-]+`, at most 252 characters (the stream `KV_<name>`
/// may have at most 255).
pub fn check_bucket_name(name: &str) -> Result<(), BucketNameError> {
    if name.is_empty() {
        return Err(BucketNameError::Empty);
    }
    if name.len() > BUCKET_NAME_MAX_LEN {
        return Err(BucketNameError::TooLong { length: name.len() });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(BucketNameError::Character {
            name: name.to_string(),
            bad,
        });
    }
    Ok(())
}

/// A `metadata.name` or `metadata.namespace` the apiserver would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectNameError {
    #[error("name {name:?} is not valid in Kubernetes: {rule}")]
    Name { name: String, rule: Dns1123Error },
    #[error("namespace {namespace:?} is not valid in Kubernetes: {rule}")]
    Namespace {
        namespace: String,
        rule: Dns1123Error,
    },
}

/// The DNS-1123 rule a name breaks. `dots` is whether the name is a subdomain ('.'
/// allowed) rather than a label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dns1123Error {
    #[error("at most {max_length} characters, got {length}")]
    TooLong { max_length: usize, length: usize },
    #[error("it contains {bad:?}; only {} are allowed", allowed_characters(*.dots))]
    Character { bad: char, dots: bool },
    #[error("it must start and end with a lowercase letter or digit")]
    Edge,
    #[error("each '.'-separated part must start and end with a lowercase letter or digit")]
    PartEdge,
}

fn allowed_characters(dots: bool) -> &'static str {
    if dots {
        "lowercase letters, digits, '-' and '.'"
    } else {
        "lowercase letters, digits and '-'"
    }
}

/// Checks `metadata.name` as Kubernetes does for custom resources: a DNS-1123 subdomain
/// (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit,
/// at most 253 characters).
pub fn check_object_name(name: &str) -> Result<(), ObjectNameError> {
    check_dns1123(name, 253, true).map_err(|rule| ObjectNameError::Name {
        name: name.to_string(),
        rule,
    })
}

/// Checks `metadata.namespace`: a DNS-1123 label (lowercase letters, digits and '-',
/// starting and ending with a letter or digit, at most 63 characters).
pub fn check_namespace(namespace: &str) -> Result<(), ObjectNameError> {
    check_dns1123(namespace, 63, false).map_err(|rule| ObjectNameError::Namespace {
        namespace: namespace.to_string(),
        rule,
    })
}

fn check_dns1123(text: &str, max_length: usize, dots: bool) -> Result<(), Dns1123Error> {
    if text.len() > max_length {
        return Err(Dns1123Error::TooLong {
            max_length,
            length: text.len(),
        });
    }
    if let Some(bad) = text.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || (dots && *c == '.'))
    }) {
        return Err(Dns1123Error::Character { bad, dots });
    }
    let alphanumeric =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !alphanumeric(text.chars().next()) || !alphanumeric(text.chars().last()) {
        return Err(Dns1123Error::Edge);
    }
    if dots
        && text
            .split('.')
            .any(|part| !alphanumeric(part.chars().next()) || !alphanumeric(part.chars().last()))
    {
        return Err(Dns1123Error::PartEdge);
    }
    Ok(())
}

/// The longest `--manager`: it is written into every key's headers and counts toward
/// value size limits.
pub const MANAGER_MAX_LEN: usize = 128;

/// A manager name that cannot be a header value in every write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagerNameError {
    #[error("the manager name is empty (is KVOP_MANAGER set to nothing?)")]
    Empty,
    #[error("the manager name is {length} bytes long, the limit is {MANAGER_MAX_LEN}")]
    TooLong { length: usize },
    #[error(
        "the manager name {name:?} contains {bad:?}: only visible ASCII characters are allowed (no spaces or control characters)"
    )]
    Character { name: String, bad: char },
}

/// Checks a manager name (`--manager`, `KVOP_MANAGER`): 1 to 128 visible ASCII
/// characters. It is a header value in every write: CR or LF would break the message,
/// bytes beyond ASCII are not a string to every client, and an empty name (an unset CI
/// variable) would make every key this manager wrote look foreign to its next run.
pub fn check_manager(name: &str) -> Result<(), ManagerNameError> {
    if name.is_empty() {
        return Err(ManagerNameError::Empty);
    }
    if name.len() > MANAGER_MAX_LEN {
        return Err(ManagerNameError::TooLong { length: name.len() });
    }
    if let Some(bad) = name.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(ManagerNameError::Character {
            name: name.to_string(),
            bad,
        });
    }
    Ok(())
}

/// A key NATS clients do not all accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is empty")]
    Empty,
    #[error("key is {length} characters long, the limit is {KEY_MAX_LEN}")]
    TooLong { length: usize },
    #[error("key {key:?} contains {bad:?}: only letters, digits and '-/_=.' are allowed")]
    Character { key: String, bad: char },
    #[error("key {key:?} may not start or end with '.'")]
    DotAtEdge { key: String },
    #[error("key {key:?} may not contain '..'")]
    DoubleDot { key: String },
}

/// Checks a key: `[-/_=.a-zA-Z0-9]+`, no leading or trailing `.`, no `..` (async-nats
/// accepts `..` and then fails with "no stream found"), at most 1024 characters (a longer
/// subject risks the server's 4 KiB control-line limit, which drops the connection).
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > KEY_MAX_LEN {
        return Err(KeyError::TooLong { length: key.len() });
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-/_=.".contains(*c)))
    {
        return Err(KeyError::Character {
            key: key.to_string(),
            bad,
        });
    }
    if key.starts_with('.') || key.ends_with('.') {
        return Err(KeyError::DotAtEdge {
            key: key.to_string(),
        });
    }
    if key.contains("..") {
        return Err(KeyError::DoubleDot {
            key: key.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_nats_rule_and_length_limit() {
        for good in ["a", "user-sessions", "cache_1", "ABC", &"x".repeat(252)] {
            assert!(check_bucket_name(good).is_ok(), "{good:?}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", "ü", &"x".repeat(253)] {
            assert!(check_bucket_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_names_and_namespaces_follow_kubernetes() {
        for good in ["a", "user-sessions", "app.config", "x1", &"a".repeat(253)] {
            assert!(check_object_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "Bad_Name!",
            "x/y",
            "My_Bucket",
            "-a",
            "a-",
            "a..b",
            "a.-b",
            &"a".repeat(254),
        ] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
        }
        for good in ["default", "team-a", "n1", &"n".repeat(63)] {
            assert!(check_namespace(good).is_ok(), "{good:?}");
        }
        for bad in ["Bad NS!", "a.b", "Default", "-n", &"n".repeat(64)] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn manager_names_are_short_visible_ascii() {
        for good in ["kvop", "team-a/ci", "argo@prod:1", &"m".repeat(128)] {
            assert!(check_manager(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "a b",
            "ci\r\nX-Evil: 1",
            "tab\t",
            "ünïcode",
            &"m".repeat(129),
        ] {
            assert!(check_manager(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_say_the_rule_in_words() {
        assert_eq!(
            check_object_name("My_Bucket")
                .expect_err("refused")
                .to_string(),
            "name \"My_Bucket\" is not valid in Kubernetes: it contains 'M'; only lowercase letters, digits, '-' and '.' are allowed"
        );
        assert_eq!(
            check_namespace("a.b").expect_err("refused").to_string(),
            "namespace \"a.b\" is not valid in Kubernetes: it contains '.'; only lowercase letters, digits and '-' are allowed"
        );
        assert_eq!(
            check_key("a..b"),
            Err(KeyError::DoubleDot { key: "a..b".into() })
        );
        assert_eq!(
            check_manager("").expect_err("refused").to_string(),
            "the manager name is empty (is KVOP_MANAGER set to nothing?)"
        );
        assert_eq!(
            check_bucket_name(&"x".repeat(253))
                .expect_err("refused")
                .to_string(),
            "bucket name is 253 characters long, the limit is 252"
        );
    }

    #[test]
    fn keys_follow_the_strictest_client_rule() {
        for good in [
            "a",
            "app/config",
            "a.b.c",
            "x=y",
            "_kv.x",
            "a-b_c",
            &"k".repeat(1024),
        ] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a b",
            "a*",
            ">",
            "ü",
            "a\tb",
            &"k".repeat(1025),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
