//! The stream behind a bucket: built from a [`BucketConfig`], updated by
//! read-modify-write, and projected back for comparison.
//!
//! kvop owns the stream config instead of using async-nats `kv::Config`, whose update
//! wipes metadata, fails on TTL-enabled buckets and gives sources no subject transforms.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::stream::{self, Compression, DiscardPolicy};

use super::errors::StreamConfigError;
use super::stream_name;
use super::stream_source::{from_source, to_source};
use crate::api::StorageType;
use crate::api::stream::{Placement, Republish};
use crate::desired::{BucketClaim, BucketConfig};

/// The server's default duplicate window; it must not exceed `max_age`.
const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The stream metadata key kvop marks the streams it creates with (the manager's name),
/// so that deleting a resource never deletes a bucket kvop only adopted. Like the
/// server's `_nats.*` keys it is kept on every update and is not the user's metadata.
pub const CREATED_BY: &str = "kvop.dev/created-by";

/// The stream metadata keys of a bucket's claim ([`BucketClaim`]).
pub const CLAIM_MANAGER: &str = "kvop.dev/claim-manager";
pub const CLAIM_OWNER: &str = "kvop.dev/claim-owner";
pub const CLAIM_UID: &str = "kvop.dev/claim-uid";

/// The claim recorded in a stream's metadata, if any.
pub fn read_claim(metadata: &HashMap<String, String>) -> Option<BucketClaim> {
    Some(BucketClaim {
        manager: metadata.get(CLAIM_MANAGER)?.clone(),
        owner: metadata.get(CLAIM_OWNER).cloned().unwrap_or_default(),
        uid: metadata.get(CLAIM_UID).cloned(),
    })
}

/// Records `claim` in a stream's metadata (`None` removes any claim).
pub fn write_claim(metadata: &mut HashMap<String, String>, claim: Option<&BucketClaim>) {
    for key in [CLAIM_MANAGER, CLAIM_OWNER, CLAIM_UID] {
        metadata.remove(key);
    }
    if let Some(claim) = claim {
        metadata.insert(CLAIM_MANAGER.into(), claim.manager.clone());
        metadata.insert(CLAIM_OWNER.into(), claim.owner.clone());
        if let Some(uid) = &claim.uid {
            metadata.insert(CLAIM_UID.into(), uid.clone());
        }
    }
}

/// Whether a stream metadata key belongs to the server or to kvop, not to the user.
fn reserved(key: &str) -> bool {
    key.starts_with("_nats.") || key.starts_with("kvop.dev/")
}

/// A new stream config for `bucket`, with the fixed shape every KV bucket has (ADR-8),
/// marked as created by the claim's manager and claimed by it.
pub fn build(
    bucket: &str,
    config: &BucketConfig,
    claim: &BucketClaim,
) -> Result<stream::Config, StreamConfigError> {
    let manager = &claim.manager;
    let mut stream = stream::Config {
        name: stream_name(bucket),
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        max_messages: -1,
        max_consumers: -1,
        ..Default::default()
    };
    set_managed_fields(&mut stream, bucket, config)?;
    stream
        .metadata
        .insert(CREATED_BY.to_string(), manager.to_string());
    write_claim(&mut stream.metadata, Some(claim));
    Ok(stream)
}

/// Writes the managed fields of `config` into an existing stream config, keeping every
/// field kvop does not manage (read-modify-write).
pub fn set_managed_fields(
    stream: &mut stream::Config,
    bucket: &str,
    config: &BucketConfig,
) -> Result<(), StreamConfigError> {
    let BucketConfig {
        description,
        history,
        ttl,
        max_value_size,
        max_bytes,
        storage,
        replicas,
        compression,
        allow_msg_ttl,
        limit_marker_ttl,
        placement,
        republish,
        mirror,
        sources,
        metadata,
    } = config;
    stream.description = (!description.is_empty()).then(|| description.clone());
    stream.max_messages_per_subject = *history;
    stream.max_age = *ttl;
    // The server refuses a duplicate window longer than max_age.
    stream.duplicate_window = if ttl.is_zero() {
        DEFAULT_DUPLICATE_WINDOW
    } else {
        (*ttl).min(DEFAULT_DUPLICATE_WINDOW)
    };
    stream.max_message_size =
        i32::try_from(*max_value_size).map_err(|_| StreamConfigError::MaxValueSizeTooLarge {
            max_value_size: *max_value_size,
        })?;
    stream.max_bytes = *max_bytes;
    stream.storage = match storage {
        StorageType::File => stream::StorageType::File,
        StorageType::Memory => stream::StorageType::Memory,
    };
    stream.num_replicas = usize::try_from(*replicas).unwrap_or(1);
    stream.compression = Some(if *compression {
        Compression::S2
    } else {
        Compression::None
    });
    // Per-message TTL can never be turned off again (10052), so an update keeps it on;
    // left out (`None`), a new stream is made without it and an existing one keeps its
    // own. The plan blocks a declared `false` against a stream that has it.
    stream.allow_message_ttl = allow_msg_ttl.unwrap_or(false) || stream.allow_message_ttl;
    stream.subject_delete_marker_ttl = *limit_marker_ttl;
    stream.placement = placement.as_ref().map(|placement| stream::Placement {
        cluster: placement.cluster.clone(),
        tags: placement.tags.clone(),
    });
    stream.republish = republish.as_ref().map(|republish| stream::Republish {
        source: republish.source.clone(),
        destination: republish.destination.clone(),
        headers_only: republish.headers_only,
    });
    if let Some(mirror) = mirror {
        stream.mirror = Some(to_source(mirror, None)?);
        stream.mirror_direct = true;
        stream.subjects = Vec::new();
        stream.sources = None;
    } else {
        stream.mirror = None;
        stream.subjects = vec![format!("$KV.{bucket}.>")];
        // Sourced keys are renamed into this bucket's subjects (ADR-57), unlike
        // async-nats, which leaves them under the origin's prefix.
        stream.sources = (!sources.is_empty())
            .then(|| {
                sources
                    .iter()
                    .map(|source| to_source(source, Some(bucket)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
    }
    // Keep the server's `_nats.*` keys and kvop's own; replace the user's.
    stream.metadata.retain(|key, _| reserved(key));
    stream.metadata.extend(
        metadata
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    Ok(())
}

/// The managed fields of a stream, normalized the way [`build`] writes them (the server
/// stores -1 for "unlimited", fills a duplicate window, adds `_nats.*` metadata).
pub fn project(stream: &stream::Config) -> BucketConfig {
    let unlimited = |value: i64| if value <= 0 { -1 } else { value };
    BucketConfig {
        description: stream.description.clone().unwrap_or_default(),
        history: stream.max_messages_per_subject.max(1),
        ttl: stream.max_age,
        max_value_size: unlimited(i64::from(stream.max_message_size)),
        max_bytes: unlimited(stream.max_bytes),
        storage: match stream.storage {
            stream::StorageType::File => StorageType::File,
            stream::StorageType::Memory => StorageType::Memory,
        },
        replicas: i64::try_from(stream.num_replicas.max(1)).unwrap_or(1),
        compression: stream.compression == Some(Compression::S2),
        allow_msg_ttl: Some(stream.allow_message_ttl),
        limit_marker_ttl: stream
            .subject_delete_marker_ttl
            .filter(|ttl| !ttl.is_zero()),
        placement: stream
            .placement
            .as_ref()
            .filter(|placement| placement.cluster.is_some() || !placement.tags.is_empty())
            .map(|placement| Placement {
                cluster: placement.cluster.clone(),
                tags: placement.tags.clone(),
            }),
        republish: stream.republish.as_ref().map(|republish| Republish {
            source: republish.source.clone(),
            destination: republish.destination.clone(),
            headers_only: republish.headers_only,
        }),
        mirror: stream.mirror.as_ref().map(from_source),
        sources: stream.sources.iter().flatten().map(from_source).collect(),
        metadata: user_metadata(&stream.metadata),
    }
}

fn user_metadata(metadata: &HashMap<String, String>) -> std::collections::BTreeMap<String, String> {
    metadata
        .iter()
        .filter(|(key, _)| !reserved(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::stream::StreamSource;

    fn claim() -> BucketClaim {
        BucketClaim {
            manager: "kvop".into(),
            owner: "default/b".into(),
            uid: None,
        }
    }

    fn config() -> BucketConfig {
        BucketConfig {
            description: "sessions".into(),
            history: 5,
            ttl: Duration::from_secs(30),
            max_value_size: 1 << 20,
            max_bytes: -1,
            storage: StorageType::File,
            replicas: 1,
            compression: true,
            allow_msg_ttl: Some(false),
            limit_marker_ttl: None,
            placement: None,
            republish: None,
            mirror: None,
            sources: vec![StreamSource {
                name: "origin".into(),
                filter_subject: None,
                start_seq: None,
                start_time: Some("2026-01-02T03:04:05Z".into()),
                external: None,
                domain: None,
            }],
            metadata: [("team".to_string(), "a".to_string())].into(),
        }
    }

    #[test]
    fn a_built_stream_projects_back_to_its_config() {
        let stream = build("b", &config(), &claim()).expect("valid");
        assert_eq!(project(&stream), config());
        assert_eq!(stream.subjects, vec!["$KV.b.>"]);
        assert_eq!(
            stream.duplicate_window,
            Duration::from_secs(30),
            "window follows a short ttl"
        );
        let transforms = &stream.sources.as_ref().expect("sources")[0].subject_transforms;
        assert_eq!(transforms[0].destination, "$KV.b.>");
    }

    #[test]
    fn server_owned_metadata_survives_an_update_and_is_not_compared() {
        let mut stream = build("b", &config(), &claim()).expect("valid");
        stream.metadata.insert("_nats.level".into(), "1".into());
        stream.metadata.insert("old".into(), "x".into());
        set_managed_fields(&mut stream, "b", &config()).expect("valid");
        assert_eq!(
            stream.metadata.get("_nats.level").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            stream.metadata.get(CREATED_BY).map(String::as_str),
            Some("kvop"),
            "kvop's mark on the streams it created survives updates"
        );
        assert!(!stream.metadata.contains_key("old"));
        assert_eq!(project(&stream).metadata, config().metadata);
    }

    #[test]
    fn per_message_ttl_is_on_where_declared_and_stays_on_once_the_server_has_it() {
        for (declared, on_create) in [(None, false), (Some(false), false), (Some(true), true)] {
            let config = BucketConfig {
                allow_msg_ttl: declared,
                ..config()
            };
            let mut stream = build("b", &config, &claim()).expect("valid");
            assert_eq!(
                stream.allow_message_ttl, on_create,
                "{declared:?} on create"
            );
            stream.allow_message_ttl = true;
            set_managed_fields(&mut stream, "b", &config).expect("valid");
            assert!(stream.allow_message_ttl, "{declared:?} on update");
        }
    }
}
