//! A bucket's config as a `KeyValueBucketSpec`, checked to mean exactly that config
//! when kvop loads it back (the round trip `kvop reconcile` relies on).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{BucketDeletionPolicy, KeyValueBucket, KeyValueBucketSpec, ManagementPolicy};
use crate::desired::{BucketConfig, ObjectRef, Origin};
use crate::plan::{FieldChange, diff_config};
use crate::spec::FieldProblem;
use crate::spec::desired_bucket;
use crate::units::{format_duration, format_size};

/// Why no spec can declare a bucket's config exactly.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unexportable {
    /// The spec written for it would not load, e.g. `history` over 64 set by another tool.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<FieldProblem>),
    /// The spec loads, but as a different config.
    #[error("{}", .0.iter().map(|change| format!("{} {} would be read back as {}", change.field, change.from, change.to)).collect::<Vec<_>>().join("; "))]
    ReadsBackDifferently(Vec<FieldChange>),
}

/// The spec that declares `config` for bucket `name`, managed (so that applying it to an
/// empty server creates the bucket) and kept when its resource is deleted; or why no
/// spec can declare it.
pub fn bucket_spec(name: &str, config: &BucketConfig) -> Result<KeyValueBucketSpec, Unexportable> {
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
    let spec = KeyValueBucketSpec {
        bucket: Some(name.to_string()),
        description: (!description.is_empty()).then(|| description.clone()),
        history: i32::try_from(*history).unwrap_or(i32::MAX),
        ttl: (!ttl.is_zero()).then(|| exact_duration(*ttl)),
        max_value_size: size(*max_value_size),
        max_bytes: size(*max_bytes),
        storage: *storage,
        replicas: i32::try_from(*replicas).unwrap_or(i32::MAX),
        compression: *compression,
        // Written only where limit markers do not imply it. Off, it is left out rather than
        // `false`: the manifest then keeps whatever a later server's bucket has.
        allow_msg_ttl: (*allow_msg_ttl == Some(true) && limit_marker_ttl.is_none()).then_some(true),
        limit_marker_ttl: limit_marker_ttl.map(exact_duration),
        placement: placement.clone(),
        republish: republish.clone(),
        mirror: mirror.clone(),
        sources: sources.clone(),
        metadata: metadata.clone(),
        connection: None,
        deletion_policy: BucketDeletionPolicy::Retain,
        management_policy: ManagementPolicy::Manage,
    };
    check_round_trip(name, config, &spec)?;
    Ok(spec)
}

/// Loads `spec` as kvop would and compares the result with `config`.
fn check_round_trip(
    name: &str,
    config: &BucketConfig,
    spec: &KeyValueBucketSpec,
) -> Result<(), Unexportable> {
    let owner = ObjectRef::resource("default", "export");
    let origin = Origin {
        source: "export".into(),
        line: 0,
    };
    let resource = KeyValueBucket::new("export", spec.clone());
    let loaded = desired_bucket(owner, origin, &resource).map_err(Unexportable::Refused)?;
    // The name is `spec.bucket` verbatim; a difference would be a bug in this file.
    debug_assert_eq!(loaded.name, name);
    let changes = diff_config(config, &loaded.config);
    if changes.is_empty() {
        Ok(())
    } else {
        Err(Unexportable::ReadsBackDifferently(changes))
    }
}

/// A duration as `parse_duration` reads it back exactly: whole milliseconds in the
/// usual units, anything finer as decimal seconds.
fn exact_duration(duration: Duration) -> String {
    if duration.subsec_nanos().is_multiple_of(1_000_000) {
        return format_duration(duration);
    }
    let fraction = format!("{:09}", duration.subsec_nanos());
    format!("{}.{}s", duration.as_secs(), fraction.trim_end_matches('0'))
}

/// A size limit, absent when unlimited: a quantity when one is exact (`64Ki`), else bytes.
fn size(bytes: i64) -> Option<IntOrString> {
    if bytes <= 0 {
        return None;
    }
    let quantity = format_size(bytes);
    Some(match i32::try_from(bytes) {
        Ok(small) if quantity == bytes.to_string() => IntOrString::Int(small),
        _ => IntOrString::String(quantity),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_of_a_bucket_reads_back_as_itself() {
        let mut config = BucketConfig::defaults();
        config.description = "d".into();
        config.history = 7;
        config.ttl = Duration::from_millis(1500);
        config.max_value_size = 1000;
        config.max_bytes = 10 << 30;
        config.compression = true;
        config.allow_msg_ttl = Some(true);
        config.limit_marker_ttl = Some(Duration::from_secs(5));
        config.metadata = [("team".to_string(), "a".to_string())].into();
        let spec = bucket_spec("b", &config).expect("exportable");
        assert_eq!(spec.ttl.as_deref(), Some("1500ms"));
        assert_eq!(spec.max_bytes, Some(IntOrString::String("10Gi".into())));
        assert_eq!(spec.max_value_size, Some(IntOrString::Int(1000)));
    }

    #[test]
    fn per_message_ttl_is_written_only_where_limit_markers_do_not_imply_it() {
        for (on, markers, written) in [
            (false, None, None),
            (true, None, Some(true)),
            (true, Some(Duration::from_secs(5)), None),
        ] {
            let mut config = BucketConfig::defaults();
            config.allow_msg_ttl = Some(on);
            config.limit_marker_ttl = markers;
            let spec = bucket_spec("b", &config).expect("exportable");
            assert_eq!(spec.allow_msg_ttl, written, "on {on}, markers {markers:?}");
        }
    }

    #[test]
    fn sub_millisecond_durations_are_written_exactly() {
        let ttl = Duration::new(1, 500_001);
        assert_eq!(exact_duration(ttl), "1.000500001s");
        assert_eq!(crate::units::parse_duration(&exact_duration(ttl)), Ok(ttl));
    }

    #[test]
    fn a_config_no_spec_can_declare_is_refused_with_the_field() {
        let mut config = BucketConfig::defaults();
        config.history = 100;
        let error = bucket_spec("b", &config).expect_err("history over 64");
        assert!(
            matches!(&error, Unexportable::Refused(problems) if problems.iter().any(|problem| problem.field == "spec.history")),
            "{error:?}"
        );
        assert!(error.to_string().contains("spec.history"), "{error}");
    }
}
