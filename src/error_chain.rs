//! A foreign error and its sources as one line: the words kvop's own errors carry.

use std::error::Error as StdError;

/// The error and its sources joined by `": "`, leaving out a layer whose words an outer
/// one already says (async-nats errors often repeat their source in their own text).
pub fn one_line(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(layer) = current {
        let text = layer.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = layer.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Reading {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("loading the manifests")]
    struct Loading(#[source] Reading);

    #[test]
    fn each_layer_is_said_once() {
        let error = Loading(Reading {
            path: "a.yaml",
            source: std::io::Error::other("permission denied"),
        });
        assert_eq!(
            one_line(&error),
            "loading the manifests: reading a.yaml: permission denied"
        );
    }
}
