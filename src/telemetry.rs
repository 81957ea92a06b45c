//! Logging to stderr (stdout is for reports), as text or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The NATS client's trace level prints every message it reads or writes, payload
/// included: a value from a Secret would be in the log. No filter a user gives turns it
/// on; the client's debug level and everything else stay theirs to choose.
const NEVER_TRACED: &str = "async_nats=debug";

/// Installs the global subscriber; an invalid filter falls back to `warn`.
pub fn init(level: &str, format: LogFormat) {
    let filter = capped(level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: in a pod's log, a file or a CI
        // job they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The user's filter, with the NATS client capped below trace ([`NEVER_TRACED`]).
fn capped(level: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let asks_for_client = level
        .split(',')
        .any(|directive| directive.trim().starts_with(crate::nats::CLIENT_LOG_TARGET));
    // A directive naming the client wins over a global level; one the user wrote for the
    // client is replaced, unless it is quieter than the cap (`off`, `warn`, ...).
    let quieter = level.split(',').any(|directive| {
        directive.trim().starts_with(crate::nats::CLIENT_LOG_TARGET)
            && ["off", "error", "warn", "info", "debug"]
                .iter()
                .any(|quiet| directive.trim().ends_with(&format!("={quiet}")))
    });
    let filter = if asks_for_client && quieter {
        filter
    } else {
        match NEVER_TRACED.parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        }
    };
    // The file-watch library logs, at info, every watch the kernel already dropped with
    // a directory that went away, in debug form (`Os { code: 22, ... }`): a checkout
    // would fill the log. kvop says what matters about watches itself; a filter that
    // names the library still gets its lines.
    let names_notify = level
        .split(',')
        .any(|directive| directive.trim().starts_with(FILE_WATCH_LOG_TARGET));
    match format!("{FILE_WATCH_LOG_TARGET}=off").parse() {
        Ok(directive) if !names_notify => filter.add_directive(directive),
        _ => filter,
    }
}

/// The `log` target of the file-watch library (`notify`).
const FILE_WATCH_LOG_TARGET: &str = "notify";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filter_turns_on_the_nats_clients_trace_level() {
        for level in [
            "trace",
            "async_nats=trace",
            "debug,async_nats=trace",
            "info",
        ] {
            let filter = capped(level);
            assert!(
                !filter.to_string().contains("async_nats=trace"),
                "{level}: {filter}"
            );
        }
        assert!(
            capped("warn,async_nats=off")
                .to_string()
                .contains("async_nats=off")
        );
    }

    #[test]
    fn the_file_watch_library_is_quiet_unless_named() {
        assert!(capped("info").to_string().contains("notify=off"));
        assert!(
            capped("debug,notify=debug")
                .to_string()
                .contains("notify=debug")
        );
        assert!(
            !capped("debug,notify=debug")
                .to_string()
                .contains("notify=off")
        );
    }
}
