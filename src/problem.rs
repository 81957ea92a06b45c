//! A reason a run did not converge, with where it is: the file, line and field of a
//! manifest, or the bucket and key on the server. Printed as one line for people, as
//! separate fields in the JSON report. A leaf: each step that finds problems converts its
//! own errors into this (`manifest` its `LoadError`s), so nothing here points back up.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based; absent when the problem is in a file as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The field path, e.g. `spec.history`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What is wrong, without the location.
    pub message: String,
}

impl Problem {
    /// A problem of the run as a whole (a connection failure, a refused prune).
    pub fn general(message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            line: None,
            field: None,
            bucket: None,
            key: None,
            message: message.into(),
        }
    }

    /// A problem of one bucket on the server.
    pub fn bucket(bucket: &str, message: impl Into<String>) -> Problem {
        Problem {
            bucket: Some(bucket.to_string()),
            ..Problem::general(message)
        }
    }

    /// A problem of one key on the server.
    pub fn key(bucket: &str, key: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: Some(key.to_string()),
            ..Problem::bucket(bucket, message)
        }
    }
}

/// The one-line form: `file:line: field: message`, `key "k" of bucket "b": message`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problem {
            file,
            line,
            field,
            bucket,
            key,
            message,
        } = self;
        if let Some(file) = file {
            write!(f, "{file}")?;
            if let Some(line) = line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
        }
        if let Some(field) = field {
            write!(f, "{field}: ")?;
        }
        match (bucket, key) {
            (Some(bucket), Some(key)) => write!(f, "key {key:?} of bucket {bucket:?}: ")?,
            (Some(bucket), None) => write!(f, "bucket {bucket:?}: ")?,
            _ => {}
        }
        write!(f, "{message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_prints_as_the_line_it_always_was() {
        // A manifest's problems are in `manifest`'s tests, where they are made.
        for (problem, line) in [
            (Problem::bucket("b", "gone"), "bucket \"b\": gone"),
            (
                Problem::key("b", "k", "taken"),
                "key \"k\" of bucket \"b\": taken",
            ),
            (Problem::general("refused"), "refused"),
        ] {
            assert_eq!(problem.to_string(), line);
        }
    }
}
