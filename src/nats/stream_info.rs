//! What kvop reads from a stream's info: its configuration projected as a bucket's, its
//! statistics, its creation mark and claim. Shared by everything that opens a stream
//! (`observe`, `Bucket::state`, `live`), so that all of them see one projection.

use async_nats::jetstream;

use super::stream_config::{CREATED_BY, project, read_claim};
use crate::observed::{BucketStats, ClusterStats, ObservedStream};

fn stats(info: &jetstream::stream::Info) -> BucketStats {
    BucketStats {
        values: info.state.messages,
        bytes: info.state.bytes,
        last_revision: info.state.last_sequence,
        created: info
            .created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        cluster: info
            .cluster
            .as_ref()
            .filter(|cluster| cluster.leader.is_some())
            .map(|cluster| ClusterStats {
                name: cluster.name.clone(),
                leader: cluster.leader.clone(),
                replicas: cluster
                    .replicas
                    .iter()
                    .map(|replica| {
                        (
                            replica.name.clone(),
                            replica.current,
                            replica.lag.unwrap_or(0),
                        )
                    })
                    .collect(),
            }),
    }
}

/// What kvop reads from a stream's info: its config as a bucket's, and its statistics.
pub(super) fn observed_stream(info: &jetstream::stream::Info) -> ObservedStream {
    ObservedStream {
        config: project(&info.config),
        stats: stats(info),
        created_by: info.config.metadata.get(CREATED_BY).cloned(),
        claim: read_claim(&info.config.metadata),
    }
}
