//! Ownership headers: every message kvop writes names its manager and declaring object,
//! so NATS itself shows who wrote a key, with no state file.

use std::sync::Arc;

/// The `--manager` name of the writer.
pub const MANAGER_HEADER: &str = "Kvop-Manager";
/// `namespace/name` of the declaring object.
pub const OWNER_HEADER: &str = "Kvop-Owner";
/// On a value kvop wrote from a Secret: whoever reads the key later (a diff of its
/// removal, in another run or after its declaration is gone) knows not to show it.
pub const SENSITIVE_HEADER: &str = "Kvop-Sensitive";
/// The revision check header the server compares with the key's last sequence.
pub const EXPECTED_SEQUENCE_HEADER: &str = "Nats-Expected-Last-Subject-Sequence";

/// The most header bytes a kvop write of a value can carry. The server counts headers
/// toward `max_value_size` and `max_payload` (kv-semantics O21), so validation adds this
/// to the value size.
pub fn write_overhead(manager: &str, owner: &str, sensitive: bool) -> usize {
    const VERSION_LINE: &str = "NATS/1.0\r\n";
    let line = |name: &str, value_len: usize| name.len() + 2 + value_len + 2;
    VERSION_LINE.len()
        + line(MANAGER_HEADER, manager.len())
        + line(OWNER_HEADER, owner.len())
        + line(EXPECTED_SEQUENCE_HEADER, u64::MAX.to_string().len())
        + if sensitive {
            line(SENSITIVE_HEADER, "true".len())
        } else {
            0
        }
        + 2
}

/// Who wrote the current message of a key, read from its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writer {
    /// Shared by the keys of a sweep or a view that name the same manager (nearly all
    /// of them): one copy instead of one per key.
    pub manager: Option<Arc<str>>,
    pub owner: Option<String>,
    /// The message carries [`SENSITIVE_HEADER`]: its value came from a Secret.
    pub sensitive: bool,
}

impl Writer {
    /// Whether `manager` wrote this message.
    pub fn is(&self, manager: &str) -> bool {
        self.manager.as_deref() == Some(manager)
    }
}
