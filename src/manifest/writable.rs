//! Whether an entry can be written into its bucket at all: the bucket is not a read-only
//! mirror, and the value with kvop's ownership headers fits the bucket's max value size
//! and the server's max payload. One rule for `kvop reconcile` (mirrors from the
//! manifests; then, once the server is known and before the first write, mirrors there
//! and the size of each value that will be written) and for the operator.

use crate::desired::DesiredEntry;
use crate::ownership;

/// Where a limit was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// From the bucket's manifest or resource.
    Declared,
    /// From the server (a bucket kvop observes but does not manage).
    OnServer,
}

/// What the bucket and server allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits<'a> {
    pub bucket: &'a str,
    pub mirror: Option<Known>,
    /// The bucket's max value size (negative: none).
    pub max_value_size: i64,
    /// The server's largest message, once connected.
    pub max_payload: Option<usize>,
}

/// Why an entry cannot be written, and the field to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable {
    pub field: &'static str,
    pub message: String,
}

/// Checks that `entry`, written by `manager`, fits `limits`.
pub fn check_writable(
    entry: &DesiredEntry,
    limits: &Limits<'_>,
    manager: &str,
) -> Result<(), Unwritable> {
    if let Some(known) = limits.mirror {
        let place = match known {
            Known::Declared => "",
            Known::OnServer => " on the server",
        };
        return Err(Unwritable {
            field: "spec.bucketRef.name",
            message: format!(
                "bucket {:?} is a read-only mirror{place}; declare the entry on its origin bucket",
                limits.bucket
            ),
        });
    }
    let headers = ownership::write_overhead(manager, &entry.owner.to_string(), entry.sensitive);
    let total = entry.value.len() + headers;
    let over = |limit: String| Unwritable {
        field: "spec",
        message: format!(
            "the value is {} bytes, plus {headers} bytes of headers, over {limit}",
            entry.value.len()
        ),
    };
    if let Some(max_payload) = limits.max_payload
        && total > max_payload
    {
        return Err(over(format!(
            "the server's max_payload ({max_payload} bytes)"
        )));
    }
    let limit = limits.max_value_size;
    if limit >= 0 && total as i64 > limit {
        return Err(over(format!(
            "the maxValueSize of bucket {:?} ({limit} bytes)",
            limits.bucket
        )));
    }
    Ok(())
}
