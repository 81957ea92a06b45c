//! A bucket's mirror and sources as stream sources, and back: keys sourced into a bucket
//! are renamed into its subjects, and a filter travels in that renaming transform.

use async_nats::jetstream::stream::{self, SubjectTransform};

use super::errors::StreamConfigError;
use super::stream_name;
use crate::api::stream::{ExternalSource, StreamSource};

/// The stream source of `source`; `into_bucket` is the sourcing bucket (renaming its
/// keys), `None` for a mirror.
pub(super) fn to_source(
    source: &StreamSource,
    into_bucket: Option<&str>,
) -> Result<stream::Source, StreamConfigError> {
    let start_time = source
        .start_time
        .as_deref()
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|source| StreamConfigError::StartTime {
                    text: text.to_string(),
                    source,
                })
        })
        .transpose()?;
    Ok(stream::Source {
        name: stream_name(&source.name),
        start_sequence: source.start_seq.and_then(|seq| u64::try_from(seq).ok()),
        start_time,
        // Sourcing renames keys with a transform; a filter then lives in the transform,
        // since the server refuses both at once (10144).
        filter_subject: if into_bucket.is_some() {
            None
        } else {
            source.filter_subject.clone()
        },
        external: source.external.as_ref().map(|external| stream::External {
            api_prefix: external.api_prefix.clone(),
            delivery_prefix: external.deliver_prefix.clone(),
        }),
        domain: source.domain.clone(),
        subject_transforms: into_bucket
            .map(|bucket| {
                let origin = format!("$KV.{}.", source.name);
                let filter = source
                    .filter_subject
                    .clone()
                    .unwrap_or_else(|| format!("{origin}>"));
                let destination = format!(
                    "$KV.{bucket}.{}",
                    filter.strip_prefix(&origin).unwrap_or(">")
                );
                vec![SubjectTransform {
                    source: filter,
                    destination,
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// A stream source as the `StreamSource` that [`to_source`] writes it from.
pub(super) fn from_source(source: &stream::Source) -> StreamSource {
    StreamSource {
        name: source
            .name
            .strip_prefix("KV_")
            .unwrap_or(&source.name)
            .to_string(),
        // A source's filter is the source of its renaming transform (see `to_source`).
        filter_subject: source
            .filter_subject
            .clone()
            .filter(|subject| !subject.is_empty())
            .or_else(|| {
                let whole = format!(
                    "$KV.{}.>",
                    source.name.strip_prefix("KV_").unwrap_or(&source.name)
                );
                source
                    .subject_transforms
                    .first()
                    .map(|transform| transform.source.clone())
                    .filter(|filter| *filter != whole)
            }),
        start_seq: source
            .start_sequence
            .filter(|seq| *seq > 0)
            .and_then(|seq| i64::try_from(seq).ok()),
        start_time: source.start_time.and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }),
        external: source.external.as_ref().map(|external| ExternalSource {
            api_prefix: external.api_prefix.clone(),
            deliver_prefix: external
                .delivery_prefix
                .clone()
                .filter(|prefix| !prefix.is_empty()),
        }),
        domain: source.domain.clone().filter(|domain| !domain.is_empty()),
    }
}
