//! `kvop reconcile`: load → the shared pass (observe, check, plan, guard: `crate::pass`)
//! → apply → report, for files instead of custom resources. Nothing is written unless
//! every input is valid.

use std::time::{Duration, Instant};

use crate::apply::{ApplyOptions, EntryResult, Outcome, apply};
use crate::manifest::{self, Input, LoadErrors, LoadOptions, LoadStep};
use crate::nats::{Connection, ConnectionSettings, NatsError, connect, require_jetstream};
use crate::observed::Observed;
use crate::pass::EmptyPrune;
use crate::pass::{PassError, PassOptions, Planned, plan_against_server};
use crate::plan::{BucketAction, ClaimScope, EntryAction, Plan};
use crate::problem::Problem;
use crate::progress::{Activity, LOADING_SHOWN_FROM_BYTES, Progress, loading_text};
use crate::report::stdout as output;
use crate::report::{self, Report};

/// Problems repeated on stderr after the text report; the report has every one.
const MAX_PROBLEMS_ON_STDERR: usize = 20;

use crate::report::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};

/// Everything `kvop reconcile` was asked to do.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub inputs: Vec<Input>,
    pub connection: ConnectionSettings,
    pub manager: String,
    pub dry_run: bool,
    pub prune: bool,
    pub allow_empty_prune: bool,
    pub detailed_exitcode: bool,
    pub json: bool,
    /// List every key in the text report, not the first few per action and bucket.
    pub verbose: bool,
    pub window: usize,
    /// Whether the plan is shown as a diff of old and new values.
    pub diff: DiffMode,
}

/// How the plan is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffMode {
    /// As actions and counts (the default).
    Off,
    /// As a diff, in place of the plan (`reconcile --diff`); the run goes on.
    Shown,
    /// `kvop diff`: the diff is the whole output (`-o json`: its document) and the exit
    /// code says whether there are differences ([`DIFF_CHANGES`]).
    Command,
}

/// `kvop diff`'s exit code when NATS differs from the manifests (as `diff` does).
pub const DIFF_CHANGES: i32 = 1;
/// `kvop diff`'s exit code on an error (invalid files, NATS unreachable, a key the plan
/// cannot write).
pub const DIFF_ERROR: i32 = 2;

/// Prints what `kvop diff` shows; its exit code.
fn print_diff(
    options: &ReconcileOptions,
    plan: &Plan,
    observed: &crate::observed::Observed,
) -> i32 {
    let diff = report::diff::diff_of(plan, observed);
    if options.json {
        output::println(&serde_json::to_string_pretty(&diff).unwrap_or_default());
    } else {
        output::print(&report::diff::render(&diff));
    }
    let problems = report::plan_problems(plan);
    for problem in problems.iter().take(MAX_PROBLEMS_ON_STDERR) {
        eprintln!("error: {problem}");
    }
    if !problems.is_empty() {
        DIFF_ERROR
    } else if diff.differences > 0 {
        DIFF_CHANGES
    } else {
        EXIT_OK
    }
}

/// Why a run stopped before writing.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Invalid(#[from] LoadErrors),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(transparent)]
    EmptyPrune(#[from] EmptyPrune),
}

impl From<PassError> for ReconcileError {
    fn from(error: PassError) -> Self {
        match error {
            PassError::Invalid(errors) => ReconcileError::Invalid(errors),
            PassError::EmptyPrune(refused) => ReconcileError::EmptyPrune(refused),
            PassError::Nats(error) => ReconcileError::Nats(error),
        }
    }
}

/// What a run learnt before it could fail, for the JSON report of a failed run.
#[derive(Debug, Default)]
struct Learnt {
    server_version: Option<String>,
    skipped: Vec<String>,
}

/// Runs a reconcile and prints its report to stdout; returns the exit code. With
/// `--output json`, a run that stops early prints its report too: one document always.
pub async fn run(options: &ReconcileOptions) -> Result<i32, ReconcileError> {
    let mut learnt = Learnt::default();
    let result = run_steps(options, &mut learnt).await;
    if let Err(error) = &result
        && options.json
    {
        let report = Report {
            server_version: learnt.server_version,
            skipped: learnt.skipped,
            ..Report::stopped(options.manager.clone(), options.dry_run, error.problems())
        };
        report.print();
    }
    result
}

impl ReconcileError {
    /// The error as located problems.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ReconcileError::Invalid(errors) => errors.0.iter().map(Problem::from).collect(),
            other => vec![Problem::general(other.to_string())],
        }
    }
}

async fn run_steps(options: &ReconcileOptions, learnt: &mut Learnt) -> Result<i32, ReconcileError> {
    let started = Instant::now();
    let load_options = LoadOptions {
        manager: options.manager.clone(),
    };
    // A large load, then observing its buckets, take seconds: say so on a terminal.
    let mut activity = Activity::new();
    let loaded = manifest::load_with_progress(&options.inputs, &load_options, &|step| {
        if let LoadStep::Read { bytes, .. } = step
            && bytes >= LOADING_SHOWN_FROM_BYTES
        {
            activity.reveal();
        }
        activity.set(loading_text(step));
    });
    // Dropped on an error: the line is cleared before the error is printed.
    let loaded = loaded?;
    let mut phases = Phases::new(started);
    activity.set("connecting to NATS");
    for notice in &loaded.skipped {
        tracing::info!("{notice}");
        if !options.json {
            activity.note(notice);
        }
    }
    learnt.skipped.clone_from(&loaded.skipped);
    let desired = loaded.desired;
    let connection = connect(&options.connection).await?;
    learnt.server_version = Some(connection.server_version());
    require_jetstream(&connection, &options.connection).await?;
    phases.connected = started.elapsed();
    activity.set(format!(
        "observing {} bucket{}",
        desired.buckets.len(),
        if desired.buckets.len() == 1 { "" } else { "s" }
    ));
    let Planned {
        observed,
        plan,
        observing,
    } = plan_against_server(
        &connection,
        &desired,
        &PassOptions {
            manager: options.manager.clone(),
            prune: options.prune,
            allow_empty_prune: options.allow_empty_prune,
        },
    )
    .await?;
    phases.observed = phases.connected + observing;
    activity.finish();
    match options.diff {
        DiffMode::Command => return Ok(print_diff(options, &plan, &observed)),
        DiffMode::Shown if !options.json => {
            output::print(&report::diff::render(&report::diff::diff_of(
                &plan, &observed,
            )));
        }
        _ if !options.json => output::print(&report::render_plan(&plan, options.verbose)),
        _ => {}
    }
    // Planning includes printing the plan: 10,000 lines are not free.
    phases.planned = started.elapsed();
    let mut problems = report::plan_problems(&plan);
    let mut outcome = None;
    if !options.dry_run && plan.has_changes() {
        let progress = Progress::new(
            plan.buckets
                .iter()
                .flat_map(|bucket| &bucket.entries)
                .filter(|entry| entry.action.writes())
                .count(),
        );
        let apply_options = ApplyOptions {
            scope: ClaimScope::Manager,
            manager: options.manager.clone(),
            window: options.window,
            ride_out: true,
        };
        let applied = apply(&connection, &plan, &desired, &apply_options, &|| {
            progress.tick()
        })
        .await;
        progress.finish();
        // The outcome restates every key problem; bucket problems were never attempted.
        problems = report::bucket_problems(&plan);
        problems.extend(applied.problems());
        if !options.json {
            output::print(&report::render_outcome(&applied, options.verbose));
        }
        outcome = Some(applied);
    }
    phases.applied = started.elapsed();
    let status = status_after(&connection, &plan, &observed, outcome.as_ref()).await;
    phases.reported = started.elapsed();
    let exit_code = if !problems.is_empty() {
        EXIT_ERROR
    } else if options.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    if options.json {
        let report = Report {
            schema_version: report::SCHEMA_VERSION,
            manager: options.manager.clone(),
            dry_run: options.dry_run,
            server_version: Some(connection.server_version()),
            skipped: loaded.skipped,
            plan: Some(report::plan_report(&plan)),
            // With nothing to write the result still says how every key ended.
            result: (!options.dry_run).then(|| match &outcome {
                Some(applied) => report::result_report(applied),
                None => report::result_report(&Outcome::unapplied(&plan)),
            }),
            status,
            problems,
            exit_code,
        };
        output::println(&serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        if !status.is_empty() {
            output::println("");
            output::print(&report::render_status(&status));
        }
        // A server that went away fails every key the same way: the report above lists
        // them all; stderr keeps to the first few.
        for problem in problems.iter().take(MAX_PROBLEMS_ON_STDERR) {
            eprintln!("error: {problem}");
        }
        if problems.len() > MAX_PROBLEMS_ON_STDERR {
            eprintln!(
                "error: ... and {} more problems (listed in the report above)",
                problems.len() - MAX_PROBLEMS_ON_STDERR
            );
        }
        if options.dry_run && plan.has_changes() {
            output::println("Dry run: nothing was written.");
        }
    }
    phases.log(started.elapsed());
    Ok(exit_code)
}

/// When each step of a run ended, from its start: what `KVOP_LOG=kvop=debug` prints, to
/// see where a slow run's time goes without a profiler.
struct Phases {
    loaded: Duration,
    connected: Duration,
    observed: Duration,
    planned: Duration,
    applied: Duration,
    reported: Duration,
}

impl Phases {
    fn new(started: Instant) -> Phases {
        let loaded = started.elapsed();
        Phases {
            loaded,
            connected: loaded,
            observed: loaded,
            planned: loaded,
            applied: loaded,
            reported: loaded,
        }
    }

    fn log(&self, elapsed: Duration) {
        // Tenths of a millisecond: enough to compare, short enough to read.
        let ms = |duration: Duration| (duration.as_secs_f64() * 10_000.0).round() / 10.0;
        tracing::debug!(
            load_ms = ms(self.loaded),
            connect_ms = ms(self.connected - self.loaded),
            observe_ms = ms(self.observed - self.connected),
            plan_ms = ms(self.planned - self.observed),
            apply_ms = ms(self.applied - self.planned),
            status_ms = ms(self.reported - self.applied),
            elapsed_ms = ms(elapsed),
            "reconcile finished"
        );
    }
}

/// Fresh statistics after writing (or the observed ones on a dry run), with live key
/// counts derived from the sweep and the outcome.
async fn status_after(
    connection: &Connection,
    plan: &Plan,
    observed: &Observed,
    outcome: Option<&Outcome>,
) -> Vec<crate::api::KeyValueBucketStatus> {
    let mut status = Vec::new();
    // Without a connection each stream info would wait out its timeout for nothing.
    let connected = connection.is_connected();
    for (index, bucket) in plan.buckets.iter().enumerate() {
        let seen = observed.buckets.get(&bucket.bucket);
        let stream = match outcome {
            Some(_) if !connected => None,
            Some(_) => connection
                .bucket(&bucket.bucket)
                .state()
                .await
                .ok()
                .flatten(),
            None => seen.and_then(|seen| seen.stream.clone()),
        };
        let Some(stream) = stream else { continue };
        let created_bucket = matches!(bucket.action, BucketAction::Create { .. });
        let live_before = if created_bucket {
            Some(0)
        } else {
            seen.and_then(|seen| seen.live_keys())
        };
        let keys =
            live_before.map(
                |live| match outcome.and_then(|outcome| outcome.buckets.get(index)) {
                    Some(applied) => {
                        let mut live = live as i64;
                        for (entry, result) in bucket.entries.iter().zip(&applied.entries) {
                            if let EntryResult::Written { .. } = result.result {
                                match entry.action {
                                    EntryAction::Create { .. } => live += 1,
                                    EntryAction::Remove { .. } => live -= 1,
                                    _ => {}
                                }
                            }
                        }
                        live.max(0) as u64
                    }
                    None => live,
                },
            );
        status.push(report::bucket_status(&bucket.bucket, &stream, keys));
    }
    status
}
