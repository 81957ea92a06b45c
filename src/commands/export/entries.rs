//! The `KeyValueEntry` documents of one bucket, rendered in chunks and written in key
//! order as they are rendered: 100,000 keys are about 30 MB of YAML, which is never held
//! whole, and writing overlaps rendering.

use std::io::{self, Write};
use std::sync::mpsc;

use bytes::Bytes;

use super::render::{Meta, ValueField, entry_document};
use crate::manifest::yaml::parse_documents;
use crate::spec::canonical_json;

/// Below this many keys one thread renders them all.
const PARALLEL_FROM: usize = 10_000;
/// Keys rendered at a time: about 300 KB of YAML, a buffer that is then reused.
const CHUNK_KEYS: usize = 1_000;
/// Bytes of YAML a key takes with a short value, to size the buffers once.
const BYTES_PER_KEY: usize = 320;

/// One exported key: its key, stored value and, when `bucket.key` is not a valid object
/// name, the name it was given instead.
pub struct Exported<'a> {
    pub key: &'a str,
    pub value: &'a Bytes,
    pub hashed_name: Option<String>,
}

/// The entries of one bucket, in the order they are written.
pub struct Entries<'a> {
    /// The bucket's name in NATS: an entry is named `bucket.key` when that is valid.
    pub bucket: &'a str,
    /// The `KeyValueBucket`'s object name, for `bucketRef`.
    pub bucket_ref: String,
    pub namespace: Option<&'a str>,
    pub json_values: bool,
    pub keys: Vec<Exported<'a>>,
}

impl Entries<'_> {
    /// Writes each key as `---` and its document. With many keys, one thread per core
    /// renders every n-th chunk and this thread writes the chunks in order; a lane holds
    /// at most three buffers (one rendering, one queued, one being written).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let chunks: Vec<&[Exported<'_>]> = self.keys.chunks(CHUNK_KEYS).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.keys.len() < PARALLEL_FROM || threads < 2 {
            let mut text = String::new();
            for chunk in chunks {
                text.clear();
                self.render_chunk(chunk, &mut text);
                out.write_all(text.as_bytes())?;
            }
            return Ok(());
        }
        std::thread::scope(|scope| {
            let lanes: Vec<_> = (0..threads)
                .map(|lane| {
                    let (rendered, written) = mpsc::sync_channel::<String>(1);
                    let (spare, reused) = mpsc::channel::<String>();
                    let chunks = &chunks;
                    scope.spawn(move || {
                        for chunk in chunks.iter().skip(lane).step_by(threads) {
                            let mut text = reused.try_recv().unwrap_or_else(|_| {
                                String::with_capacity(CHUNK_KEYS * BYTES_PER_KEY)
                            });
                            text.clear();
                            self.render_chunk(chunk, &mut text);
                            if rendered.send(text).is_err() {
                                return; // the writer stopped: a write failed
                            }
                        }
                    });
                    (written, spare)
                })
                .collect();
            for index in 0..chunks.len() {
                let (written, spare) = &lanes[index % threads];
                let text = written
                    .recv()
                    .map_err(|_| io::Error::other("a rendering thread stopped"))?;
                out.write_all(text.as_bytes())?;
                let _ = spare.send(text);
            }
            Ok(())
        })
    }

    fn render_chunk(&self, keys: &[Exported<'_>], text: &mut String) {
        let mut json_checks = Vec::new();
        let mut name = String::new();
        for (index, exported) in keys.iter().enumerate() {
            let field = ValueField::of(exported.value, self.json_values);
            let start = text.len();
            self.push_entry(text, exported, &mut name, &field);
            if matches!(field, ValueField::Json(_)) {
                json_checks.push((start, text.len(), index));
            }
        }
        if !json_checks.is_empty() {
            *text = self.keep_exact_json(std::mem::take(text), &json_checks, keys);
        }
    }

    /// `name` is scratch space for `bucket.key`, kept between keys.
    fn push_entry(
        &self,
        text: &mut String,
        exported: &Exported<'_>,
        name: &mut String,
        field: &ValueField<'_>,
    ) {
        let name = match &exported.hashed_name {
            Some(hashed) => hashed,
            None => {
                name.clear();
                name.push_str(self.bucket);
                name.push('.');
                name.push_str(exported.key);
                name.as_str()
            }
        };
        text.push_str("---\n");
        let meta = Meta {
            name,
            namespace: self.namespace,
        };
        entry_document(text, &meta, &self.bucket_ref, exported.key, field);
    }

    /// Reads the `jsonValue` documents back with kvop's own YAML reader and writes any
    /// that would not store the same bytes (a number YAML reads differently) as `value`.
    fn keep_exact_json(
        &self,
        text: String,
        checks: &[(usize, usize, usize)],
        keys: &[Exported<'_>],
    ) -> String {
        let documents: String = checks
            .iter()
            .map(|(start, end, _)| &text[*start..*end])
            .collect();
        let parsed = parse_documents(&documents)
            .ok()
            .filter(|parsed| parsed.len() == checks.len());
        let exact = |check: usize| {
            parsed.as_ref().is_some_and(|parsed| {
                canonical_json(parsed[check].value["spec"]["jsonValue"].clone())
                    == keys[checks[check].2].value.as_ref()
            })
        };
        let mut fixed = String::with_capacity(text.len());
        let mut name = String::new();
        let mut copied = 0;
        for (check, (start, end, index)) in checks.iter().enumerate() {
            if exact(check) {
                continue;
            }
            fixed.push_str(&text[copied..*start]);
            let exported = &keys[*index];
            let field = ValueField::of(exported.value, false);
            self.push_entry(&mut fixed, exported, &mut name, &field);
            copied = *end;
        }
        fixed.push_str(&text[copied..]);
        fixed
    }
}
