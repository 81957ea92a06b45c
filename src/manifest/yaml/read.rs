//! Reading many files on every core, document by document. Each document goes to its
//! thread's [`Sink`] as soon as it is parsed and is dropped once the sink has taken what
//! it needs, so a load holds what the sinks keep, never every parsed document at once:
//! a parsed document is about ten times its text (a `serde_json` map per mapping), and
//! holding 100,000 of them took 480 MB where their text is 26 MB.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::route::{self, Paths};
use super::slices::{Slice, document_slices};
use super::spanned::parse_spanned;
use super::{Document, SyntaxError, spawn_deep};

/// Takes the documents of one run of a file, in file order.
pub trait Sink: Send {
    /// A document of file `file` (its index in the files read).
    fn document(&mut self, file: usize, document: Document);
    /// A document of file `file` that does not parse; the next `---` starts afresh.
    fn syntax_error(&mut self, file: usize, error: SyntaxError);
}

/// Below this many bytes in all, everything is read on the calling thread.
pub(super) const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// The text of the consecutive documents a thread takes at a time: far more work than
/// handing it out costs, and small enough that the cores share one large file evenly
/// and the progress line moves.
const UNIT_BYTES: usize = 64 * 1024;

/// A run of consecutive documents of one file.
struct Unit {
    file: usize,
    part: Part,
    bytes: usize,
}

enum Part {
    /// These slices of the file's documents.
    Slices(Range<usize>),
    /// The whole file at once: directives (`%YAML`) apply across document markers.
    Whole,
}

/// Reads every document of `files`, each run of documents into a sink of its own from
/// `new_sink`, on every core for a large input, and hands each sink to `emit` in
/// reading order (file by file, documents in file order) as soon as the runs before it
/// are done, for the caller to merge. `progress` is told the bytes read so far. Both
/// are called on the calling thread.
pub fn read_files<S: Sink>(
    files: &[Arc<str>],
    paths: Paths,
    new_sink: &(dyn Fn() -> S + Sync),
    progress: &mut dyn FnMut(usize),
    emit: &mut dyn FnMut(S),
) {
    let slices: Vec<Option<Vec<Slice>>> = files.iter().map(|text| document_slices(text)).collect();
    let units = units(files, &slices);
    let read = |unit: &Unit| {
        let mut sink = new_sink();
        read_unit(files, &slices, unit, paths, &mut sink);
        sink
    };
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    let total: usize = files.iter().map(|text| text.len()).sum();
    if threads <= 1 || units.len() <= 1 || total < PARALLEL_MIN_BYTES {
        let mut done = 0;
        for unit in &units {
            let sink = read(unit);
            done += unit.bytes;
            progress(done);
            emit(sink);
        }
        return;
    }
    let next = AtomicUsize::new(0);
    // Runs read out of order wait here until the runs before them are in.
    let mut waiting: Vec<Option<S>> = units.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        let handles: Vec<_> = (0..threads.min(units.len()))
            .map(|_| {
                let (sender, next, units, read) = (sender.clone(), &next, &units, &read);
                spawn_deep(scope, move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(unit) = units.get(index) else { break };
                        if sender.send((index, read(unit))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(sender);
        let mut done = 0;
        let mut emitted = 0;
        for (index, sink) in receiver {
            done += units[index].bytes;
            progress(done);
            waiting[index] = Some(sink);
            while let Some(sink) = waiting.get_mut(emitted).and_then(Option::take) {
                emit(sink);
                emitted += 1;
            }
        }
        // A panic is re-raised: a read that lost documents would be worse.
        for handle in handles {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
    });
}

/// Cuts every file into runs of documents of about [`UNIT_BYTES`]; a run never spans
/// two files.
fn units(files: &[Arc<str>], slices: &[Option<Vec<Slice>>]) -> Vec<Unit> {
    let mut units = Vec::new();
    for (file, (text, slices)) in files.iter().zip(slices).enumerate() {
        let Some(slices) = slices else {
            units.push(Unit {
                file,
                part: Part::Whole,
                bytes: text.len(),
            });
            continue;
        };
        let mut start = 0;
        while start < slices.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < slices.len() && (end == start || bytes < UNIT_BYTES) {
                bytes += slices[end].range.len();
                end += 1;
            }
            units.push(Unit {
                file,
                part: Part::Slices(start..end),
                bytes,
            });
            start = end;
        }
    }
    units
}

fn read_unit(
    files: &[Arc<str>],
    slices: &[Option<Vec<Slice>>],
    unit: &Unit,
    paths: Paths,
    sink: &mut impl Sink,
) {
    let file = unit.file;
    let parsed: Box<dyn Iterator<Item = Result<Vec<Document>, SyntaxError>>> = match &unit.part {
        Part::Whole => Box::new(std::iter::once(parse_spanned(&files[file], 0))),
        Part::Slices(range) => {
            let slices = slices[file].as_deref().unwrap_or_default();
            Box::new(
                slices[range.clone()]
                    .iter()
                    .map(move |slice| route::parse_slice(&files[file], slice, paths)),
            )
        }
    };
    for result in parsed {
        match result {
            Ok(documents) => documents
                .into_iter()
                .for_each(|document| sink.document(file, document)),
            Err(error) => sink.syntax_error(file, error),
        }
    }
}
