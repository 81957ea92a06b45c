//! The rules for bucket names, keys and manager names: the strictest union of what NATS
//! clients accept.

use crate::api::{BUCKET_NAME_MAX_LEN, KEY_MAX_LEN};

/// Checks a bucket name: `[a-zA-Z0-9_-]+`, at most 252 characters (the stream `KV_<name>`
/// may have at most 255).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("bucket name is empty".into());
    }
    if name.len() > BUCKET_NAME_MAX_LEN {
        return Err(format!(
            "bucket name is {} characters long, the limit is {BUCKET_NAME_MAX_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "bucket name {name:?} contains {bad:?}: only letters, digits, '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Checks `metadata.name` as Kubernetes does for custom resources: a DNS-1123 subdomain
/// (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit,
/// at most 253 characters).
pub fn check_object_name(name: &str) -> Result<(), String> {
    check_dns1123(name, 253, true)
        .map_err(|rule| format!("name {name:?} is not valid in Kubernetes: {rule}"))
}

/// Checks `metadata.namespace`: a DNS-1123 label (lowercase letters, digits and '-',
/// starting and ending with a letter or digit, at most 63 characters).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    check_dns1123(namespace, 63, false)
        .map_err(|rule| format!("namespace {namespace:?} is not valid in Kubernetes: {rule}"))
}

fn check_dns1123(text: &str, max_len: usize, dots: bool) -> Result<(), String> {
    let allowed = if dots {
        "lowercase letters, digits, '-' and '.'"
    } else {
        "lowercase letters, digits and '-'"
    };
    if text.len() > max_len {
        return Err(format!("at most {max_len} characters, got {}", text.len()));
    }
    if let Some(bad) = text.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || (dots && *c == '.'))
    }) {
        return Err(format!("it contains {bad:?}; only {allowed} are allowed"));
    }
    let alphanumeric =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !alphanumeric(text.chars().next()) || !alphanumeric(text.chars().last()) {
        return Err("it must start and end with a lowercase letter or digit".into());
    }
    if dots
        && text
            .split('.')
            .any(|part| !alphanumeric(part.chars().next()) || !alphanumeric(part.chars().last()))
    {
        return Err(
            "each '.'-separated part must start and end with a lowercase letter or digit".into(),
        );
    }
    Ok(())
}

/// The longest `--manager`: it is written into every key's headers and counts toward
/// value size limits.
pub const MANAGER_MAX_LEN: usize = 128;

/// Checks a manager name (`--manager`, `KVOP_MANAGER`): 1 to 128 visible ASCII
/// characters. It is a header value in every write: CR or LF would break the message,
/// bytes beyond ASCII are not a string to every client, and an empty name (an unset CI
/// variable) would make every key this manager wrote look foreign to its next run.
pub fn check_manager(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the manager name is empty (is KVOP_MANAGER set to nothing?)".into());
    }
    if name.len() > MANAGER_MAX_LEN {
        return Err(format!(
            "the manager name is {} bytes long, the limit is {MANAGER_MAX_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "the manager name {name:?} contains {bad:?}: only visible ASCII characters are allowed (no spaces or control characters)"
        ));
    }
    Ok(())
}

/// Checks a key: `[-/_=.a-zA-Z0-9]+`, no leading or trailing `.`, no `..` (async-nats
/// accepts `..` and then fails with "no stream found"), at most 1024 characters (a longer
/// subject risks the server's 4 KiB control-line limit, which drops the connection).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("key is empty".into());
    }
    if key.len() > KEY_MAX_LEN {
        return Err(format!(
            "key is {} characters long, the limit is {KEY_MAX_LEN}",
            key.len()
        ));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-/_=.".contains(*c)))
    {
        return Err(format!(
            "key {key:?} contains {bad:?}: only letters, digits and '-/_=.' are allowed"
        ));
    }
    if key.starts_with('.') || key.ends_with('.') {
        return Err(format!("key {key:?} may not start or end with '.'"));
    }
    if key.contains("..") {
        return Err(format!("key {key:?} may not contain '..'"));
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
