//! W2: what a git checkout costs under `kvop reconcile --watch --prune`. A repository with
//! a 50 MB asset beside the watched directory; the checkouts alternate between a commit
//! that moves key `k1` to another file (with a new value) and removes file `gone.yaml`
//! (key `g`), and the commit before. Timed from the end of `git checkout`: until a
//! watcher sees `k1`'s new value, and until it sees `g` deleted (held for the prune
//! settle time). Every delete marker of `k1` is counted: there must be none.

use std::time::{Duration, Instant};

use crate::support::git::Repo;
use crate::support::recorder::Recorder;
use crate::support::watching::Watching;
use crate::support::{NatsServer, bucket, entry};
use crate::watch::wait_for;

pub const CHECKOUTS: usize = 10;
/// kvop's default `--prune-settle`.
pub const SETTLE: Duration = Duration::from_secs(2);

pub struct CheckoutCost {
    /// Median and worst, from the end of the checkout.
    pub value: (Duration, Duration),
    pub deletion: (Duration, Duration),
    /// Median time git itself took.
    pub git: Duration,
    pub moved_key_markers: usize,
}

fn median_and_worst(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

pub async fn measure() -> CheckoutCost {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let recorder = Recorder::start(&client, "b").await;
    let base = tempfile::tempdir().expect("tempdir");
    let repo = Repo {
        dir: base.path().to_path_buf(),
    };
    repo.git(&["init", "-q"]);
    repo.write("kv/bucket.yaml", bucket("b", "").as_bytes());
    repo.write("kv/keep.yaml", entry("k0", "b", "k0", "0", "").as_bytes());
    repo.write("kv/a.yaml", entry("k1", "b", "k1", "a", "").as_bytes());
    repo.write("kv/gone.yaml", entry("g", "b", "g", "1", "").as_bytes());
    repo.asset("assets/big.bin", 1);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "A"]);
    repo.git(&["mv", "kv/a.yaml", "kv/z.yaml"]);
    repo.write("kv/z.yaml", entry("k1", "b", "k1", "b", "").as_bytes());
    repo.git(&["rm", "-q", "kv/gone.yaml"]);
    repo.asset("assets/big.bin", 2);
    repo.git(&["commit", "-qam", "B"]);
    repo.git(&["tag", "B"]);
    repo.git(&["checkout", "-q", "HEAD~1"]);

    let watch = Watching::start(&nats.url(), &[&base.path().join("kv")], &["--prune"]);
    watch
        .wait_for_lines(&["manifests loaded and in force"], 1)
        .await;
    let js = async_nats::jetstream::new(client);
    let store = js.get_key_value("b").await.expect("bucket");
    let mut moved = store.watch("k1").await.expect("watch k1");
    let mut removed = store.watch("g").await.expect("watch g");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (mut values, mut deletions, mut gits) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..CHECKOUTS {
        let forward = round % 2 == 0;
        let started = Instant::now();
        repo.git(&["checkout", "-q", if forward { "B" } else { "HEAD~1" }]);
        let checked_out = Instant::now();
        gits.push(checked_out - started);
        wait_for(&mut moved, Some(if forward { "b" } else { "a" })).await;
        values.push(checked_out.elapsed());
        if forward {
            wait_for(&mut removed, None).await;
            deletions.push(checked_out.elapsed());
        } else {
            wait_for(&mut removed, Some("1")).await;
        }
    }
    drop(watch);
    let moved_key_markers = recorder
        .removals()
        .iter()
        .filter(|marker| format!("{marker:?}").contains("\"k1\""))
        .count();
    gits.sort();
    CheckoutCost {
        value: median_and_worst(&mut values),
        deletion: median_and_worst(&mut deletions),
        git: gits[gits.len() / 2],
        moved_key_markers,
    }
}
