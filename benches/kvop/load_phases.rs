//! Where B1's loading time goes, in this process: B1's manifests parsed by each
//! combination of YAML readers, the whole load, dropping what it built, and a cold
//! `kvop` process that loads and stops at a refused connection. Printed, not a row of
//! the table: these are the phase split of BENCHMARKS.md, not targets.

use std::path::Path;
use std::time::{Duration, Instant};

use kvop::manifest::yaml::{Paths, parse_documents_by};
use kvop::manifest::{Input, LoadOptions, load};

const ROUNDS: usize = 5;

/// Runs every phase `ROUNDS` times over the manifests in `dir` and prints the medians.
pub fn print(dir: &Path) {
    let file = dir.join("bench.yaml");
    let text = std::fs::read_to_string(&file).expect("read manifests");
    let documents = text.matches("\n---\n").count() + 1;
    println!(
        "load phases, in-process unless said: {} KB, {documents} documents, median of {ROUNDS}",
        text.len() / 1000
    );
    for (paths, name) in [
        (
            Paths::All,
            "parse: line reader, then fast path, then spanned",
        ),
        (
            Paths::FastAndSpanned,
            "parse: fast path (serde_yaml_ng), then spanned",
        ),
        (
            Paths::SpannedOnly,
            "parse: every document spanned (serde-saphyr)",
        ),
    ] {
        let time = median_of(|| {
            let started = Instant::now();
            let parsed = parse_documents_by(&text, paths).expect("valid manifests");
            let elapsed = started.elapsed();
            assert_eq!(parsed.len(), documents);
            elapsed
        });
        println!("  {name}: {}", millis(time));
    }
    let options = LoadOptions {
        manager: "kvop".into(),
    };
    let inputs = [Input::Path(dir.to_path_buf())];
    let (mut loads, mut drops) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let loaded = load(&inputs, &options).expect("valid manifests");
        loads.push(started.elapsed());
        let started = Instant::now();
        drop(loaded);
        drops.push(started.elapsed());
    }
    println!(
        "  whole load (read, parse, validate, resolve): {}",
        millis(median(loads))
    );
    println!("  dropping what it loaded: {}", millis(median(drops)));
    let one = tempfile::tempdir().expect("dir");
    let first = text.split("\n---\n").next().unwrap_or_default();
    std::fs::write(one.path().join("one.yaml"), format!("{first}\n")).expect("write");
    for (input, name) in [(dir, "every document"), (one.path(), "one document")] {
        let time = median_of(|| refused_process(input));
        println!(
            "  cold process, load then a refused connection, {name}: {}",
            millis(time)
        );
    }
}

/// A `kvop reconcile` that loads `dir` and stops at a port nothing listens on.
fn refused_process(dir: &Path) -> Duration {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kvop"))
        .args(["reconcile", "-f"])
        .arg(dir)
        .env("NATS_URL", format!("nats://127.0.0.1:{port}"))
        .output()
        .expect("run kvop");
    let elapsed = started.elapsed();
    assert!(!output.status.success(), "no server listens there");
    elapsed
}

fn median_of(mut run: impl FnMut() -> Duration) -> Duration {
    median((0..ROUNDS).map(|_| run()).collect())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn millis(time: Duration) -> String {
    format!("{:.1} ms", time.as_secs_f64() * 1000.0)
}
