//! Command-line interface: clap types only. Every flag also reads an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::nats::ConnectionSettings;
use crate::nats::Material;
pub use crate::telemetry::LogFormat;

/// kvop keeps NATS JetStream Key-Value buckets and keys exactly as declared.
#[derive(Debug, Parser)]
#[command(name = "kvop", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level (error, warn, info, debug, trace) or a tracing filter [default:
    /// `warn,async_nats=off`; `info,async_nats=off` for `reconcile --watch`, which logs
    /// one line per change]. The NATS client's own logs are off by default, and the
    /// file-watch library's (`notify`) unless the filter names it: kvop reports their
    /// errors itself, in its own words.
    #[arg(long, global = true, env = "KVOP_LOG")]
    pub log_level: Option<String>,

    /// Log format on stderr.
    #[arg(long, global = true, env = "KVOP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Cli {
    /// The tracing filter: as given, or the command's default.
    pub fn log_filter(&self) -> String {
        if let Some(filter) = &self.log_level {
            return filter.clone();
        }
        let watching = matches!(&self.command, Command::Reconcile(args) if args.watch);
        let level = if watching { "info" } else { "warn" };
        format!("{level},{}=off", crate::nats::CLIENT_LOG_TARGET)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make NATS match the manifests in files or directories: plan, apply, report.
    Reconcile(Box<ReconcileArgs>),
    /// Run the Kubernetes operator: reconcile KeyValueBucket and KeyValueEntry resources.
    Run(Box<RunArgs>),
    /// Show what `reconcile` would change, old → new, for every bucket field and key;
    /// exit 0 when nothing differs, 1 when something does, 2 on an error.
    #[command(long_about = DIFF_ABOUT)]
    Diff(Box<DiffArgs>),
    /// Write manifests for buckets and keys that already exist, so kvop can adopt them.
    #[command(long_about = EXPORT_ABOUT)]
    Export(Box<ExportArgs>),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD.
    Crds(CrdsArgs),
    /// Ask a kvop endpoint (`/readyz`, `/healthz`) whether it is well: exit 0 when it
    /// answers 200, 1 otherwise (the chart's `helm test` runs it).
    Probe(ProbeArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "KVOP_NAMESPACE")]
    pub namespace: Option<String>,

    /// Reconcile every object at least this often, as a safety net behind the live
    /// bucket views.
    #[arg(long, env = "KVOP_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Refresh bucket statistics in `.status` this often.
    #[arg(long, env = "KVOP_STATUS_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub status_interval: Duration,

    /// Address of the /metrics, /healthz and /readyz endpoint.
    #[arg(long, env = "KVOP_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: std::net::SocketAddr,

    /// Check the Secrets that objects reference for a new version this often (a rotated
    /// value or credential is applied within it). kvop reads Secrets only by name: it
    /// never lists or watches them.
    #[arg(long, env = "KVOP_SECRET_REFRESH_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub secret_refresh_interval: Duration,

    /// Run only while holding a Lease, so that several replicas can run with one active.
    #[arg(long, env = "KVOP_LEADER_ELECTION")]
    pub leader_election: bool,

    /// The Lease's namespace (default: the pod's namespace, from POD_NAMESPACE).
    #[arg(long, env = "KVOP_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// The Lease's name.
    #[arg(long, env = "KVOP_LEASE_NAME", default_value = "kvop-leader")]
    pub lease_name: String,

    /// This instance's identity in the Lease (default: POD_NAME or the host name, and the
    /// process id).
    #[arg(long, env = "KVOP_IDENTITY")]
    pub identity: Option<String>,

    /// The manager name written into every key's `Kvop-Manager` header (1 to 128
    /// visible ASCII characters).
    #[arg(long, env = "KVOP_MANAGER", default_value = "kvop", value_parser = parse_manager)]
    pub manager: String,

    /// A JSON file mapping namespaces to NATS identities and the bucket names each may
    /// use (docs/install.md, "Multi-tenant clusters"). Without it every namespace uses
    /// the operator's connection and may name any bucket.
    #[arg(long, env = "KVOP_TENANTS", value_name = "FILE")]
    pub tenants: Option<PathBuf>,

    /// Refuse every `spec.connection.servers`: objects use the connection of their
    /// namespace only.
    #[arg(
        long,
        env = "KVOP_FORBID_OBJECT_SERVERS",
        conflicts_with = "allowed_object_servers"
    )]
    pub forbid_object_servers: bool,

    /// Let `spec.connection.servers` name only these servers (comma-separated URLs).
    /// The operator's own credentials never go to an object's servers either way.
    #[arg(
        long,
        env = "KVOP_ALLOWED_OBJECT_SERVERS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub allowed_object_servers: Vec<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl RunArgs {
    /// Where objects may point `spec.connection.servers`.
    pub fn object_servers(&self) -> crate::operator::tenancy::ObjectServers {
        use crate::operator::tenancy::{ObjectServers, normalize_server};
        if self.forbid_object_servers {
            ObjectServers::Forbidden
        } else if self
            .allowed_object_servers
            .iter()
            .any(|url| !url.trim().is_empty())
        {
            ObjectServers::Listed(
                self.allowed_object_servers
                    .iter()
                    .filter(|url| !url.trim().is_empty())
                    .map(|url| normalize_server(url))
                    .collect(),
            )
        } else {
            ObjectServers::Any
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, crate::units::DurationError> {
    crate::units::parse_duration(text)
}

fn parse_manager(text: &str) -> Result<String, crate::names::ManagerNameError> {
    crate::names::check_manager(text).map(|()| text.to_string())
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The endpoint, e.g. http://kvop-metrics.kvop-system.svc:8080/readyz; with
    /// --service-env, only its path (/readyz).
    pub url: String,
    /// Take host and port from the environment Kubernetes gives a pod for each Service
    /// (`PREFIX_SERVICE_HOST`, `PREFIX_SERVICE_PORT`; PREFIX is the Service's name in
    /// capitals, `-` as `_`): no cluster DNS needed.
    #[arg(long, value_name = "PREFIX")]
    pub service_env: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write `<plural>.<group>.yaml` files into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// A manifest file, a directory (searched recursively for *.yaml, *.yml, *.json), or
    /// `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub files: Vec<String>,

    /// Observe and plan only; write nothing.
    #[arg(long, env = "KVOP_DRY_RUN", conflicts_with = "watch")]
    pub dry_run: bool,

    /// Exit 0 when nothing had to change, 2 when changes were planned or applied, 1 on
    /// error.
    #[arg(long, env = "KVOP_DETAILED_EXITCODE", conflicts_with = "watch")]
    pub detailed_exitcode: bool,

    /// Keep running after the first apply and keep NATS equal to the files: reload when
    /// they change (or on SIGHUP), restore keys changed in NATS, repair buckets. Invalid
    /// files write nothing and the last valid ones stay in force. One log line per
    /// change; SIGTERM or SIGINT stops once the writes in flight are done.
    #[arg(long, env = "KVOP_WATCH")]
    pub watch: bool,

    /// With --watch: how long the files must be quiet after a change before they are
    /// read again (an editor's save is several changes). A file still open for writing
    /// and a git operation in progress are waited for on top of it.
    #[arg(long, env = "KVOP_DEBOUNCE", default_value = "20ms", value_parser = parse_duration)]
    pub debounce: Duration,

    /// With --watch --prune: how long the files must stay without a key before it is
    /// deleted, so that a file moved (removed, then written elsewhere) deletes nothing.
    #[arg(long, env = "KVOP_PRUNE_SETTLE", default_value = "2s", value_parser = parse_duration)]
    pub prune_settle: Duration,

    /// With --watch: how often the files are looked at without a notification, for
    /// what sends none (a mount replaced, a network file system); 0 turns it off.
    #[arg(long, env = "KVOP_POLL_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// With --watch: how long a change to the files may wait to be put in force (a file
    /// left open, a git operation, invalid files, NATS down) before /readyz fails and
    /// kvop_watch_files_stale reads 1.
    #[arg(long, env = "KVOP_STALE_AFTER", default_value = "1m", value_parser = parse_duration)]
    pub stale_after: Duration,

    /// With --watch: re-observe every bucket at least this often, as a safety net behind
    /// the live bucket views.
    #[arg(long, env = "KVOP_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// With --watch: serve /metrics, /healthz and /readyz on this address (off unless
    /// given), e.g. 127.0.0.1:8080.
    #[arg(long, env = "KVOP_METRICS_ADDRESS")]
    pub metrics_address: Option<std::net::SocketAddr>,

    /// Delete keys of declared buckets that this manager wrote and that are no longer
    /// declared.
    #[arg(long, env = "KVOP_PRUNE")]
    pub prune: bool,

    /// Allow --prune to delete every key of a bucket that has no declared entries, and a
    /// KeyValueEntrySet that declares no keys to delete the keys it wrote.
    #[arg(long, env = "KVOP_ALLOW_EMPTY_PRUNE")]
    pub allow_empty_prune: bool,

    /// Output format of the report on stdout.
    #[arg(short = 'o', long, env = "KVOP_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// List every key in the text report, unchanged ones too (by default: per bucket the
    /// count of keys per action and the first 5 keys of each).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// The manager name written into every key's `Kvop-Manager` header; prune and
    /// `IfUnchanged` only touch keys written under this name (1 to 128 visible ASCII
    /// characters).
    #[arg(long, env = "KVOP_MANAGER", default_value = "kvop", value_parser = parse_manager)]
    pub manager: String,

    /// Writes in flight per bucket (1 to 4096).
    #[arg(long, env = "KVOP_WINDOW", default_value_t = crate::nats::DEFAULT_WINDOW, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=crate::nats::MAX_IN_FLIGHT as u64))]
    pub window: usize,

    /// Show the plan as a diff: old → new for every bucket field and key (what `kvop
    /// diff` prints), in place of the list of actions.
    #[arg(long)]
    pub diff: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A manifest file, a directory (searched recursively for *.yaml, *.yml, *.json), or
    /// `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub files: Vec<String>,

    /// Also show the keys `reconcile --prune` would delete.
    #[arg(long, env = "KVOP_PRUNE")]
    pub prune: bool,

    /// Output format on stdout.
    #[arg(short = 'o', long, env = "KVOP_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// The manager name whose keys are this run's (as for `reconcile`).
    #[arg(long, env = "KVOP_MANAGER", default_value = "kvop", value_parser = parse_manager)]
    pub manager: String,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

const DIFF_ABOUT: &str = "\
Show what `kvop reconcile` would change, without writing anything: for each bucket the \
fields that differ (old → new), and for each key that would be created, updated or \
deleted its old and new value as a unified diff. JSON objects and arrays are compared \
pretty-printed, so one changed field is one changed line; values that are not UTF-8 are \
shown as hex. `-o json` prints the same as one JSON document (binary values in base64).

Exit codes, as diff(1): 0 when NATS already matches the manifests, 1 when there are \
differences, 2 on an error (invalid files, NATS unreachable, a key the plan cannot \
write). `kvop reconcile --dry-run --diff` shows the same diff with reconcile's exit \
codes.";

const EXPORT_ABOUT: &str = "\
Write KeyValueBucket and KeyValueEntry (or, with --sets, KeyValueEntrySet) manifests for \
buckets and keys that already exist, so that kvop can adopt them: `kvop reconcile -f` of \
the output against the same server changes nothing, and applied to an empty server it \
recreates the buckets' settings and their live keys byte for byte.

Each bucket is read in one sweep (its config, then the last value of every key matching \
--keys). Deleted and purged keys are left out. Values are `value` for text, `binaryValue` \
(base64) otherwise, `jsonValue` with --json-values when the stored bytes are exactly the \
compact, key-sorted JSON kvop would write. Every object gets `deletionPolicy: Retain`, so \
deleting a manifest or resource later never deletes data; buckets get \
`managementPolicy: Manage`. Object names are the bucket name and `<bucket>.<key>` when \
those are valid Kubernetes names, else a sanitized form with a hash suffix; `spec.bucket` \
and `spec.key` always hold the exact names.

With --sets, each bucket's keys are one KeyValueEntrySet instead (named after the bucket, items in byte order, values written as above; a set holds at most 10,000 keys). With --prefix P as well, only the keys that start with P, as a set with `keyPrefix: P` and item keys relative to it (named `<bucket>.<P>`, sanitized). A set keeps its keys when deleted and prunes only keys it wrote.

With -o DIR, one file per bucket (`<bucket>.yaml`: the bucket, then its keys in byte \
order); existing files are not overwritten without --force. Without -o, one YAML stream \
on stdout. Progress and notes (settings a manifest cannot express) go to stderr.

WARNING: export writes every value in clear, secrets included. Keep the output as safe \
as the bucket itself.";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A bucket to export. Repeatable.
    #[arg(short = 'b', long = "bucket", required = true, value_name = "NAME")]
    pub buckets: Vec<String>,

    /// Export only keys matching these filters: keys with NATS wildcards (`*` one token,
    /// `>` the rest), e.g. `app.>`. Repeatable; default: every key.
    #[arg(long = "keys", value_name = "FILTER", num_args = 1..)]
    pub keys: Vec<String>,

    /// Write one file per bucket into this directory instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Replace existing files in the output directory.
    #[arg(long)]
    pub force: bool,

    /// Write values that are kvop's canonical JSON (compact, keys sorted) as `jsonValue`.
    #[arg(long)]
    pub json_values: bool,

    /// Write one KeyValueEntrySet per bucket, every key an inline item, instead of one
    /// KeyValueEntry per key.
    #[arg(long)]
    pub sets: bool,

    /// With --sets: export only the keys that start with PREFIX (e.g. `checkout/`), as a
    /// set with `keyPrefix: PREFIX` and item keys relative to it.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// The `metadata.namespace` of every object (default: left out, which means
    /// `default`).
    #[arg(long)]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// How to reach NATS.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// A credentials (.creds) file.
    #[arg(long, env = "NATS_CREDS", value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// A file holding an NKey seed.
    #[arg(long, env = "NATS_NKEY", value_name = "FILE")]
    pub nkey: Option<PathBuf>,
    /// User name.
    #[arg(long, env = "NATS_USER")]
    pub user: Option<String>,
    /// Password (prefer the environment variable: flags show up in process lists).
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Authentication token (prefer the environment variable).
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate to verify the server.
    #[arg(long, env = "NATS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate.
    #[arg(long, env = "NATS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Client certificate key.
    #[arg(long, env = "NATS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Start TLS before the server's INFO (servers with `handshake_first`).
    #[arg(long, env = "NATS_TLS_FIRST")]
    pub tls_first: bool,
    /// JetStream domain.
    #[arg(long, env = "NATS_JS_DOMAIN", conflicts_with = "js_api_prefix")]
    pub js_domain: Option<String>,
    /// JetStream API prefix (for imported JetStream).
    #[arg(long, env = "NATS_JS_API_PREFIX")]
    pub js_api_prefix: Option<String>,
}

impl ConnectionArgs {
    pub fn settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            url: self.nats_url.clone(),
            creds: self.creds.clone().map(Material::File),
            nkey: self.nkey.clone().map(Material::File),
            user: self.user.clone(),
            password: self.password.clone(),
            token: self.token.clone(),
            tls_ca: self.tls_ca.clone().map(Material::File),
            tls_cert: self.tls_cert.clone().map(Material::File),
            tls_key: self.tls_key.clone().map(Material::File),
            tls_first: self.tls_first,
            js_domain: self.js_domain.clone(),
            js_api_prefix: self.js_api_prefix.clone(),
            client_name: format!("kvop {}", env!("CARGO_PKG_VERSION")),
            retry_initial_connect: false,
        }
    }
}
