//! `kvop reconcile --watch --prune` on real file systems, against a real nats-server,
//! with every message the bucket stores recorded (not only the final state): a slow
//! generator, files moved by hand, git checkout/pull/merge with a 50 MB asset in the
//! tree, kubelet's `..data` swap, git-sync's link swap, a release link in the middle of
//! the `-f` path, a bind mount replaced, a file left open. Each scenario does on disk exactly what the tool
//! does, and shows zero delete markers and no value or setting that was never declared.

mod support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use support::git::Repo;
use support::layouts::{Volume, release, swap_link};
use support::recorder::Recorder;
use support::watching::{Watching, docs, eventually, http_get, wait_value};
use support::{NatsServer, bucket, entry, free_port, manifests, stream_config};

const IN_FORCE: &str = "manifests loaded and in force";

/// A server, a JetStream context on it and a recorder of bucket `b`.
async fn recorded(server: &NatsServer) -> (jetstream::Context, Recorder) {
    let client = server.client().await;
    let recorder = Recorder::start(&client, "b").await;
    (jetstream::new(client), recorder)
}

/// Bucket `b` (with `history`) and keys k1..k3 holding `value`.
fn three_keys(history: u32, value: &str) -> String {
    let mut all = vec![bucket("b", &format!("  history: {history}\n"))];
    for key in ["k1", "k2", "k3"] {
        all.push(entry(key, "b", key, value, ""));
    }
    docs(&all)
}

fn log_of(watch: &Watching) -> impl Fn() -> String + '_ {
    || watch.log().join("\n")
}

#[tokio::test]
async fn a_slow_generator_is_applied_only_once_it_closes_the_file() {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let dir = manifests(&[("all.yaml", &three_keys(5, "old"))]);
    let path = dir.path().join("all.yaml");
    let watch = Watching::start(&server.url(), &[dir.path()], &["--prune"]);
    wait_value(&watch, &js, "b", "k3", Some("old")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;

    // `python gen.py > all.yaml` with block buffering: the shell truncates the file,
    // the generator writes a valid prefix ending in `history: 6` (of 64), pauses,
    // writes up to the end of the first key (k2 and k3 missing: with --prune, taken at
    // its word, they would be deleted), pauses, writes the rest and closes.
    let text = three_keys(64, "new");
    let mid_line = text.find("history: 6").unwrap() + "history: 6".len();
    let mid_file = text.match_indices("---\n").nth(1).unwrap().0;
    let generator = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::create(&path).expect("truncate");
            for part in [&text[..mid_line], &text[mid_line..mid_file]] {
                file.write_all(part.as_bytes()).expect("write");
                std::thread::sleep(Duration::from_millis(500));
            }
            file.write_all(&text.as_bytes()[mid_file..]).expect("write");
        })
    };
    generator.await.expect("the generator");
    wait_value(&watch, &js, "b", "k3", Some("new")).await;
    eventually("history 64", || async {
        stream_config(&js, "b").await.max_messages_per_subject == 64
    })
    .await;

    // A new file, written the same way, cut in the middle of a plain value.
    let more = "apiVersion: kvop.dev/v1alpha1\nkind: KeyValueEntry\nmetadata:\n  name: k4\nspec:\n  bucketRef:\n    name: b\n  key: k4\n  value: fresh-value\n";
    let cut = more.find("fresh").unwrap() + "fresh".len();
    let generator = {
        let path = dir.path().join("more.yaml");
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::create(&path).expect("create");
            file.write_all(&more.as_bytes()[..cut]).expect("write");
            std::thread::sleep(Duration::from_millis(500));
            file.write_all(&more.as_bytes()[cut..]).expect("write");
        })
    };
    generator.await.expect("the generator");
    wait_value(&watch, &js, "b", "k4", Some("fresh-value")).await;

    recorder.assert_clean(
        &[
            ("k1", &["old", "new"]),
            ("k2", &["old", "new"]),
            ("k3", &["old", "new"]),
            ("k4", &["fresh-value"]),
        ],
        &log_of(&watch),
    );
    let histories = recorder.config_values("max_msgs_per_subject");
    assert!(
        histories
            .iter()
            .all(|history| history == 5 || history == 64),
        "a history never declared was sent: {histories:?}"
    );
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn a_file_moved_by_removing_it_first_deletes_nothing_and_a_removed_one_goes_after_the_settle_time()
 {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let one = entry("k1", "b", "k1", "1", "");
    let dir = manifests(&[
        ("bucket.yaml", &bucket("b", "")),
        ("one.yaml", &one),
        ("two.yaml", &entry("k2", "b", "k2", "2", "")),
    ]);
    let watch = Watching::start(&server.url(), &[dir.path()], &["--prune"]);
    wait_value(&watch, &js, "b", "k2", Some("2")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;

    // A tool that moves without rename (rsync --delete-before, a copy across file
    // systems, an unpacked release): the old path goes, the new one comes a while
    // later — here well after the 20 ms debounce, within the 2 s settle time.
    std::fs::remove_file(dir.path().join("one.yaml")).unwrap();
    watch.wait_for_lines(&[IN_FORCE], 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::create_dir(dir.path().join("moved")).unwrap();
    std::fs::write(dir.path().join("moved/one.yaml"), &one).unwrap();
    watch.wait_for_lines(&[IN_FORCE], 3).await;
    // Past the settle time, with the files read again then: still nothing deleted.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    recorder.assert_clean(&[("k1", &["1"]), ("k2", &["2"])], &log_of(&watch));

    // Removed for good: deleted once the files have stayed without it.
    std::fs::remove_file(dir.path().join("two.yaml")).unwrap();
    wait_value(&watch, &js, "b", "k2", None).await;
    watch
        .wait_for_lines(
            &["keys no longer declared: deleting them once", "keys=1"],
            1,
        )
        .await;
    watch.wait_for_lines(&["deleted key", "key=k2"], 1).await;
    assert_eq!(recorder.removals().len(), 1, "{:?}", recorder.removals());
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn git_checkout_pull_and_merge_with_a_large_asset_delete_nothing() {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let base = tempfile::tempdir().unwrap();
    let origin = Repo {
        dir: base.path().join("origin"),
    };
    std::fs::create_dir(&origin.dir).unwrap();
    origin.git(&["init", "-q"]);
    origin.write("kv/bucket.yaml", bucket("b", "").as_bytes());
    // A key that stays put: without it, a tree read halfway would declare no key at
    // all, which the empty-prune guard refuses anyway.
    origin.write("kv/keep.yaml", entry("k0", "b", "k0", "0", "").as_bytes());
    origin.write("kv/a.yaml", three_keys_entries("a").as_bytes());
    origin.asset("assets/big.bin", 1);
    origin.git(&["add", "-A"]);
    origin.git(&["commit", "-qm", "A"]);
    let work = Repo {
        dir: base.path().join("work"),
    };
    Repo {
        dir: base.path().to_path_buf(),
    }
    .git(&["clone", "-q", "origin", "work"]);

    // The prune settle time off: only git's own marks keep the tree from being read
    // halfway through.
    let watched = work.dir.join("kv");
    let watch = Watching::start(
        &server.url(),
        &[&watched],
        &["--prune", "--prune-settle", "0s"],
    );
    wait_value(&watch, &js, "b", "k3", Some("a")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;

    // B renames a.yaml to z.yaml (written after the asset) and changes a value.
    origin.git(&["mv", "kv/a.yaml", "kv/z.yaml"]);
    origin.write("kv/z.yaml", three_keys_entries("b").as_bytes());
    origin.asset("assets/big.bin", 2);
    origin.git(&["commit", "-qam", "B"]);
    work.git(&["pull", "-q", "--ff-only"]);
    wait_value(&watch, &js, "b", "k3", Some("b")).await;

    // Back to A and forth again.
    work.git(&["checkout", "-q", "HEAD~1"]);
    wait_value(&watch, &js, "b", "k3", Some("a")).await;
    work.git(&["checkout", "-q", "main"]);
    wait_value(&watch, &js, "b", "k3", Some("b")).await;

    // A merge of a branch that moves the file into a directory.
    origin.git(&["checkout", "-qb", "feature"]);
    std::fs::create_dir(origin.dir.join("kv/team")).unwrap();
    origin.git(&["mv", "kv/z.yaml", "kv/team/y.yaml"]);
    origin.asset("assets/big.bin", 3);
    origin.git(&["commit", "-qam", "C"]);
    origin.git(&["checkout", "-q", "main"]);
    origin.write("README", b"unrelated\n");
    origin.git(&["add", "README"]);
    origin.git(&["commit", "-qm", "D"]);
    work.git(&["pull", "-q", "--ff-only"]);
    work.git(&["fetch", "-q", "origin", "feature"]);
    work.git(&["merge", "-q", "--no-ff", "-m", "merge", "FETCH_HEAD"]);
    eventually("the merge is read", || async {
        work.dir.join("kv/team/y.yaml").exists() && watch.lines_with(&[IN_FORCE]).len() >= 5
    })
    .await;
    wait_value(&watch, &js, "b", "k3", Some("b")).await;

    let values: &[&str] = &["a", "b"];
    recorder.assert_clean(
        &[
            ("k0", &["0"]),
            ("k1", values),
            ("k2", values),
            ("k3", values),
        ],
        &log_of(&watch),
    );
    // Directories removed by the checkout: the file-watch library's own complaints in
    // debug form are not the user's business.
    let noise = watch.lines_with(&["Os {"]);
    assert!(noise.is_empty(), "{noise:?}");
    assert_eq!(watch.stop().await, 0);
}

/// Keys k1..k3 holding `value`, without the bucket.
fn three_keys_entries(value: &str) -> String {
    docs(&["k1", "k2", "k3"].map(|key| entry(key, "b", key, value, "")))
}

#[tokio::test]
async fn a_configmap_volume_updated_by_kubelet_is_followed() {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let base = tempfile::tempdir().unwrap();
    let bucket_doc = bucket("b", "");
    let mut volume = Volume::new(
        base.path(),
        &[
            ("bucket.yaml", &bucket_doc),
            ("keys.yaml", &three_keys_entries("one")),
        ],
    );
    let watch = Watching::start(&server.url(), &[base.path()], &["--prune"]);
    wait_value(&watch, &js, "b", "k3", Some("one")).await;

    volume.update(&[
        ("bucket.yaml", &bucket_doc),
        ("keys.yaml", &three_keys_entries("two")),
    ]);
    wait_value(&watch, &js, "b", "k3", Some("two")).await;

    // A key added in a file of its own.
    volume.update(&[
        ("bucket.yaml", &bucket_doc),
        ("keys.yaml", &three_keys_entries("two")),
        ("more.yaml", &entry("k4", "b", "k4", "four", "")),
    ]);
    wait_value(&watch, &js, "b", "k4", Some("four")).await;

    let values: &[&str] = &["one", "two"];
    recorder.assert_clean(
        &[
            ("k1", values),
            ("k2", values),
            ("k3", values),
            ("k4", &["four"]),
        ],
        &log_of(&watch),
    );
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn git_sync_swapping_its_link_to_a_new_worktree_is_followed() {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let root = tempfile::tempdir().unwrap();
    let bucket_doc = bucket("b", "");
    let first = root.path().join(".worktrees/1111");
    release(
        &first,
        &[
            ("bucket.yaml", &bucket_doc),
            ("a.yaml", &three_keys_entries("one")),
        ],
    );
    let link = root.path().join("repo");
    std::os::unix::fs::symlink(".worktrees/1111", &link).unwrap();
    // The link itself is the input: `-f /git/repo`.
    let watch = Watching::start(&server.url(), &[&link], &["--prune"]);
    wait_value(&watch, &js, "b", "k3", Some("one")).await;

    // The next commit moves the keys to another file; git-sync checks it out in a new
    // worktree, swaps the link, removes the old worktree.
    let second = root.path().join(".worktrees/2222");
    release(
        &second,
        &[
            ("bucket.yaml", &bucket_doc),
            ("moved/z.yaml", &three_keys_entries("two")),
        ],
    );
    swap_link(&link, Path::new(".worktrees/2222"));
    std::fs::remove_dir_all(&first).unwrap();
    wait_value(&watch, &js, "b", "k3", Some("two")).await;

    let values: &[&str] = &["one", "two"];
    recorder.assert_clean(
        &[("k1", values), ("k2", values), ("k3", values)],
        &log_of(&watch),
    );
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn a_release_link_in_the_middle_of_the_path_is_followed_with_the_old_release_kept_or_removed()
{
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let app = tempfile::tempdir().unwrap();
    let bucket_doc = bucket("b", "");
    let files = |value: &str| {
        [
            ("kv/bucket.yaml".to_string(), bucket_doc.clone()),
            ("kv/keys.yaml".to_string(), three_keys_entries(value)),
        ]
    };
    let deploy = |number: u32, value: &str| {
        let dir = app.path().join(format!("releases/{number}"));
        let files = files(value);
        release(
            &dir,
            &files
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str()))
                .collect::<Vec<_>>(),
        );
        dir
    };
    let current = app.path().join("current");
    std::os::unix::fs::symlink(deploy(1, "one"), &current).unwrap();
    // Capistrano style: `-f current/kv`, the link in the middle of the path.
    let watch = Watching::start(&server.url(), &[&current.join("kv")], &["--prune"]);
    wait_value(&watch, &js, "b", "k3", Some("one")).await;

    // Release 2, the old one kept.
    swap_link(&current, &deploy(2, "two"));
    wait_value(&watch, &js, "b", "k3", Some("two")).await;
    // Release 3, the two older ones removed right after.
    swap_link(&current, &deploy(3, "three"));
    std::fs::remove_dir_all(app.path().join("releases/1")).unwrap();
    std::fs::remove_dir_all(app.path().join("releases/2")).unwrap();
    wait_value(&watch, &js, "b", "k3", Some("three")).await;

    let values: &[&str] = &["one", "two", "three"];
    recorder.assert_clean(
        &[("k1", values), ("k2", values), ("k3", values)],
        &log_of(&watch),
    );
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn a_file_left_open_is_waited_for_and_reported_stale_on_readyz_and_in_metrics() {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let dir = manifests(&[("all.yaml", &three_keys(5, "old"))]);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let watch = Watching::start(
        &server.url(),
        &[dir.path()],
        &[
            "--prune",
            "--metrics-address",
            &address,
            "--stale-after",
            "1s",
        ],
    );
    wait_value(&watch, &js, "b", "k3", Some("old")).await;
    eventually("ready", || async {
        http_get(port, "/readyz").await.starts_with("HTTP/1.1 200")
    })
    .await;
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("kvop_leader 1"),
        "a watch leads: {metrics}"
    );
    assert!(metrics.contains("kvop_watch_files_stale 0"), "{metrics}");

    // A writer that stops halfway and keeps the file open.
    let text = three_keys(5, "new");
    let half = text.match_indices("---\n").nth(1).unwrap().0;
    let mut file = std::fs::File::create(dir.path().join("all.yaml")).unwrap();
    file.write_all(&text.as_bytes()[..half]).unwrap();
    eventually("unready, naming the open file", || async {
        let response = http_get(port, "/readyz").await;
        response.starts_with("HTTP/1.1 503")
            && response.contains("all.yaml is still open for writing")
    })
    .await;
    let metrics = http_get(port, "/metrics").await;
    assert!(metrics.contains("kvop_watch_files_stale 1"), "{metrics}");

    file.write_all(&text.as_bytes()[half..]).unwrap();
    drop(file);
    wait_value(&watch, &js, "b", "k3", Some("new")).await;
    eventually("ready again", || async {
        http_get(port, "/readyz").await.starts_with("HTTP/1.1 200")
    })
    .await;
    let values: &[&str] = &["old", "new"];
    recorder.assert_clean(
        &[("k1", values), ("k2", values), ("k3", values)],
        &log_of(&watch),
    );
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn a_mount_replaced_over_the_watched_directory_is_found_by_the_periodic_look() {
    let server = NatsServer::start();
    let (js, recorder) = recorded(&server).await;
    let base = tempfile::tempdir().unwrap();
    let bucket_doc = bucket("b", "");
    let (watched, replacement) = (base.path().join("kv"), base.path().join("next"));
    for (dir, value) in [(&watched, "one"), (&replacement, "two")] {
        release(
            dir,
            &[
                ("bucket.yaml", &bucket_doc),
                ("keys.yaml", &three_keys_entries(value)),
            ],
        );
    }
    // kvop in a mount namespace of its own (a user namespace too, so that this needs
    // no privilege), where a bind mount can replace the directory it watches. A mount
    // sends no notification: only the look every 200 ms finds it.
    let watch = Watching::start_in(
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ],
        &server.url(),
        &[&watched],
        &["--prune", "--poll-interval", "200ms"],
    );
    wait_value(&watch, &js, "b", "k3", Some("one")).await;
    watch.wait_for_lines(&[IN_FORCE], 1).await;
    let pid = watch.pid().to_string();
    let mount = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "--user",
            "--mount",
            "--preserve-credentials",
            "mount",
            "--bind",
        ])
        .arg(&replacement)
        .arg(&watched)
        .output()
        .expect("run nsenter");
    assert!(
        mount.status.success(),
        "bind mount in kvop's namespace: {}",
        String::from_utf8_lossy(&mount.stderr)
    );
    wait_value(&watch, &js, "b", "k3", Some("two")).await;
    watch
        .wait_for_lines(&["the files changed without a notification"], 1)
        .await;
    let values: &[&str] = &["one", "two"];
    recorder.assert_clean(
        &[("k1", values), ("k2", values), ("k3", values)],
        &log_of(&watch),
    );
    assert_eq!(watch.stop().await, 0);
}
