//! Splits a sweep filtered to the declared keys into consumer requests that each fit the
//! server's `max_payload`.
//!
//! A filtered consumer lists every subject in its create request, and the client refuses
//! a request over `max_payload` before sending it ("max payload size exceeded"): with a
//! 2 KB limit, seven keys of 300 characters are already too many.

use std::sync::Arc;

use async_nats::jetstream::consumer::IntoConsumerConfig;

use super::sweep::consumer_config;
use super::{key_subject, stream_name};

/// Room left for what a client may add to the request around the consumer config.
const MARGIN: usize = 64;

/// The declared keys in groups whose consumer requests each fit `max_payload`, in order;
/// `None` when even a request for one key would not fit (sweep the whole bucket instead).
pub fn split<'a>(
    bucket: &str,
    keys: &'a [Arc<str>],
    max_payload: usize,
) -> Option<Vec<&'a [Arc<str>]>> {
    // The request with two empty subjects (one would be sent as `filter_subject`, and an
    // empty one is left out): every subject then adds its quoted length and a comma.
    let base = request_size(bucket, vec![String::new(); 2]);
    let budget = max_payload.checked_sub(MARGIN)?;
    let mut batches = Vec::new();
    let (mut start, mut size) = (0, base);
    for (index, key) in keys.iter().enumerate() {
        let cost = quoted_len(&key_subject(bucket, key)) + 1;
        if base + cost > budget {
            return None;
        }
        if size + cost > budget {
            batches.push(&keys[start..index]);
            (start, size) = (index, base);
        }
        size += cost;
    }
    if start < keys.len() {
        batches.push(&keys[start..]);
    }
    Some(batches)
}

/// The size of the consumer-create request async-nats sends for these filter subjects
/// (`Context::create_consumer_on_stream`: stream name, config and action as JSON).
fn request_size(bucket: &str, filters: Vec<String>) -> usize {
    let config = consumer_config(filters).into_consumer_config();
    let request = serde_json::json!({
        "stream_name": stream_name(bucket),
        "config": config,
        "action": "",
    });
    serde_json::to_vec(&request).map_or(usize::MAX, |bytes| bytes.len())
}

fn quoted_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(usize::MAX / 2, |quoted| quoted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(count: usize, length: usize) -> Vec<Arc<str>> {
        (0..count)
            .map(|i| format!("{i:04}{}", "x".repeat(length - 4)).into())
            .collect()
    }

    fn filters(bucket: &str, keys: &[Arc<str>]) -> Vec<String> {
        keys.iter().map(|key| key_subject(bucket, key)).collect()
    }

    #[test]
    fn every_request_fits_and_every_key_is_swept_once_in_order() {
        let declared = keys(10, 305);
        let batches = split("b", &declared, 2048).expect("one key fits");
        assert!(
            batches.len() > 1,
            "3 KB of subjects do not fit in one 2 KB request"
        );
        for batch in &batches {
            assert!(!batch.is_empty());
            assert!(request_size("b", filters("b", batch)) + MARGIN <= 2048);
        }
        assert_eq!(batches.concat(), declared);
    }

    #[test]
    fn keys_that_fit_the_default_max_payload_are_one_request() {
        let declared = keys(256, 1024);
        assert_eq!(
            split("b", &declared, 1024 * 1024),
            Some(vec![&declared[..]])
        );
    }

    #[test]
    fn a_key_too_long_for_a_request_of_its_own_means_the_whole_bucket_is_swept() {
        assert_eq!(split("b", &keys(3, 1000), 1024), None);
        assert_eq!(split("b", &keys(1, 10), 10), None);
    }

    #[test]
    fn the_estimate_is_never_below_the_real_request() {
        for count in [1, 2, 7, 50] {
            let declared = keys(count, 40);
            let subjects = filters("bucket", &declared);
            let estimate = request_size("bucket", vec![String::new(); 2])
                + subjects.iter().map(|s| quoted_len(s) + 1).sum::<usize>();
            assert!(estimate >= request_size("bucket", subjects), "{count} keys");
        }
    }
}
