//! The examples of `kvop reconcile --watch` (examples/kubernetes, examples/systemd), run
//! as written: kvop with the args of each Deployment's container or of the unit's
//! `ExecStart`, on the tree it would see (a ConfigMap volume as kubelet lays it out,
//! git-sync's root with its link, a git work tree), against a real nats-server; then the
//! tree updated as kubelet, git-sync or `git pull` updates it. (tests/env/helm-test.sh
//! has the real apiserver validate the Kubernetes files.)

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::git::Repo;
use support::layouts::{Volume, release, swap_link};
use support::recorder::Recorder;
use support::watching::{Watching, eventually, http_get, wait_value};
use support::{NatsServer, free_port};

/// The documents of an example file.
fn example(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read the example");
    kvop::manifest::yaml::parse_documents(&text)
        .expect("the example is YAML")
        .into_iter()
        .map(|document| document.value)
        .collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the example"))
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|container| container["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|arg| arg.as_str().expect("a string arg").to_string())
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    args.iter()
        .find_map(|arg| arg.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {args:?}"))
}

/// The kvop container's args for [`Watching::start`]: its own `-f` and metrics address
/// stand in for the pod's paths and port; `reconcile` and `--watch` it adds itself.
fn kvop_args(args: &[String], metrics: &str) -> Vec<String> {
    assert_eq!(args[0], "reconcile");
    assert!(args.iter().any(|arg| arg == "--watch"), "{args:?}");
    args[1..]
        .iter()
        .filter(|arg| *arg != "--watch" && !arg.starts_with("--filename="))
        .map(|arg| {
            if arg.starts_with("--metrics-address=") {
                format!("--metrics-address={metrics}")
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// The ConfigMap's files, with `edit` applied to each text.
fn files_of(config_map: &Value, edit: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    config_map["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(name, text)| (name.clone(), edit(text.as_str().expect("text"))))
        .collect()
}

fn refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect()
}

const BANNER: &str = "Free shipping over 50 EUR";
const EDITED: &str = "Free shipping today";

/// Waits for the edited banner, checks that no other value was ever stored and no key
/// deleted, and stops kvop.
async fn ends_with_the_edit(
    watch: Watching,
    js: &async_nats::jetstream::Context,
    recorder: &Recorder,
) {
    wait_value(&watch, js, "app-config", "checkout.banner", Some(EDITED)).await;
    recorder.assert_clean(&[("checkout.banner", &[BANNER, EDITED])], &|| {
        watch.log().join("\n")
    });
    assert_eq!(watch.stop().await, 0);
}

#[tokio::test]
async fn the_configmap_example_runs_as_written_and_follows_kubelets_updates() {
    let documents = example("watch-configmap.yaml");
    let config_map = of_kind(&documents, "ConfigMap");
    let deployment = of_kind(&documents, "Deployment");
    let kvop = container(deployment, "kvop");
    let args = args(kvop);
    let mount = &kvop["volumeMounts"][0];
    assert_eq!(flag(&args, "--filename"), mount["mountPath"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        config_map["metadata"]["name"],
        "the volume is the ConfigMap's"
    );
    assert!(
        mount.get("subPath").is_none(),
        "kubelet never updates a subPath mount"
    );

    let server = NatsServer::start();
    let client = server.client().await;
    let recorder = Recorder::start(&client, "app-config").await;
    let js = async_nats::jetstream::new(client);
    let volume_dir = tempfile::tempdir().unwrap();
    let initial = files_of(config_map, &|text| text.to_string());
    let mut volume = Volume::new(volume_dir.path(), &refs(&initial));
    let port = free_port();
    let extra = kvop_args(&args, &format!("127.0.0.1:{port}"));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let watch = Watching::start(&server.url(), &[volume_dir.path()], &extra);
    wait_value(&watch, &js, "app-config", "checkout.banner", Some(BANNER)).await;
    eventually("ready", || async {
        http_get(port, "/readyz").await.starts_with("HTTP/1.1 200")
    })
    .await;

    // `kubectl apply` of an edited ConfigMap: kubelet swaps the volume's `..data`.
    let edited = files_of(config_map, &|text| text.replace(BANNER, EDITED));
    volume.update(&refs(&edited));
    ends_with_the_edit(watch, &js, &recorder).await;
}

#[tokio::test]
async fn the_git_sync_example_runs_as_written_and_follows_the_link_swap() {
    let documents = example("watch-git-sync.yaml");
    let deployment = of_kind(&documents, "Deployment");
    let git_sync = args(container(deployment, "git-sync"));
    let kvop_container = container(deployment, "kvop");
    let args = args(kvop_container);
    // kvop reads below the link git-sync swaps, in the volume both mount.
    let link = Path::new(flag(&git_sync, "--root")).join(flag(&git_sync, "--link"));
    let filename = PathBuf::from(flag(&args, "--filename"));
    let below = filename
        .strip_prefix(&link)
        .unwrap_or_else(|_| panic!("{filename:?} is not below git-sync's link {link:?}"));

    // The repository's content: the ConfigMap example's manifests.
    let config_map = example("watch-configmap.yaml");
    let config_map = of_kind(&config_map, "ConfigMap");
    let commit = |banner: &str| -> Vec<(String, String)> {
        files_of(config_map, &|text| text.replace(BANNER, banner))
            .into_iter()
            .map(|(name, text)| (below.join(name).to_string_lossy().into_owned(), text))
            .collect()
    };
    let root = tempfile::tempdir().unwrap();
    let worktree = |hash: &str, files: &[(String, String)]| {
        let dir = root.path().join(".worktrees").join(hash);
        release(&dir, &refs(files));
        dir
    };
    let pod_link = root.path().join(flag(&git_sync, "--link"));

    let server = NatsServer::start();
    let client = server.client().await;
    let recorder = Recorder::start(&client, "app-config").await;
    let js = async_nats::jetstream::new(client);
    let port = free_port();
    let extra = kvop_args(&args, &format!("127.0.0.1:{port}"));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    // kvop starts before git-sync's first clone: the link does not exist yet.
    let watched = pod_link.join(below);
    let watch = Watching::start(&server.url(), &[&watched], &extra);
    watch.wait_for_lines(&["waiting for valid ones"], 1).await;

    let first = worktree("aaaa", &commit(BANNER));
    swap_link(&pod_link, &first);
    wait_value(&watch, &js, "app-config", "checkout.banner", Some(BANNER)).await;

    let second = worktree("bbbb", &commit(EDITED));
    swap_link(&pod_link, &second);
    std::fs::remove_dir_all(&first).unwrap();
    ends_with_the_edit(watch, &js, &recorder).await;
}

#[tokio::test]
async fn the_systemd_unit_runs_as_written_on_a_git_work_tree() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/kvop.service"),
    )
    .expect("read the unit");
    let exec: Vec<&str> = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/kvop");
    let manifests = exec
        .windows(2)
        .find_map(|pair| (pair[0] == "-f").then_some(pair[1]))
        .expect("-f");
    let metrics = exec
        .windows(2)
        .find_map(|pair| (pair[0] == "--metrics-address").then_some(pair[1]))
        .expect("--metrics-address");
    assert!(
        unit.contains(&format!(
            "ReadOnlyPaths={}",
            Path::new(manifests).parent().unwrap().display()
        )),
        "the unit may read its manifests"
    );

    // /etc/kvop/manifests as a git clone, updated by `git pull`.
    let config_map = example("watch-configmap.yaml");
    let files = |banner: &str| {
        files_of(of_kind(&config_map, "ConfigMap"), &|text| {
            text.replace(BANNER, banner)
        })
    };
    let base = tempfile::tempdir().unwrap();
    let origin = Repo {
        dir: base.path().join("origin"),
    };
    std::fs::create_dir(&origin.dir).unwrap();
    origin.git(&["init", "-q"]);
    for (name, text) in files(BANNER) {
        origin.write(&name, text.as_bytes());
    }
    origin.git(&["add", "-A"]);
    origin.git(&["commit", "-qm", "first"]);
    Repo {
        dir: base.path().to_path_buf(),
    }
    .git(&["clone", "-q", "origin", "manifests"]);
    let clone = base.path().join("manifests");

    let server = NatsServer::start();
    let client = server.client().await;
    let recorder = Recorder::start(&client, "app-config").await;
    let js = async_nats::jetstream::new(client);
    let port = free_port();
    let local_metrics = format!("127.0.0.1:{port}");
    let mut extra = Vec::new();
    let mut rest = exec[1..].iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "reconcile" | "--watch" => {}
            "-f" => {
                rest.next();
            }
            "--metrics-address" => {
                assert_eq!(rest.next(), Some(&metrics));
                extra.extend(["--metrics-address", local_metrics.as_str()]);
            }
            other => extra.push(other),
        }
    }
    let watch = Watching::start(&server.url(), &[&clone], &extra);
    wait_value(&watch, &js, "app-config", "checkout.banner", Some(BANNER)).await;

    // A commit that moves the entry into a directory and edits it, pulled in place.
    origin.git(&["rm", "-q", "flags.yaml"]);
    for (name, text) in files(EDITED) {
        let name = if name == "flags.yaml" {
            "shop/flags.yaml".to_string()
        } else {
            name
        };
        origin.write(&name, text.as_bytes());
    }
    origin.git(&["add", "-A"]);
    origin.git(&["commit", "-qm", "moved"]);
    Repo { dir: clone.clone() }.git(&["pull", "-q", "--ff-only"]);
    ends_with_the_edit(watch, &js, &recorder).await;
}
