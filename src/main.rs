//! The `kvop` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use kvop::cli::{Cli, Command, OutputFormat};
use kvop::commands::reconcile::{self, DiffMode, ReconcileOptions};
use kvop::commands::watch::{PassSettings, WatchOptions};
use kvop::manifest::Input;
use kvop::problem::Problem;
use kvop::report::Report;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap exits 2 on a usage error, and 2 is what --detailed-exitcode says when
            // changes are planned: a bad command line is invalid input, exit 1.
            let _ = error.print();
            // A program reading `-o json` gets its document for a refused line too.
            kvop::commands::refused::print_if_asked(&error);
            // `kvop diff` keeps diff(1)'s convention: 1 means differences, 2 trouble.
            let diffing = std::env::args().nth(1).as_deref() == Some("diff");
            return ExitCode::from(match (error.use_stderr(), diffing) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            });
        }
    };
    kvop::telemetry::init(&cli.log_filter(), cli.log_format);
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // kvop's errors say in their own words all their sources said, or say it
            // better (refused credentials, not the client's "authorization violation"):
            // their sources are for programs, and walking them would say it again.
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Reconcile(args) if args.watch => {
            if args.output == OutputFormat::Json {
                let refusal = "--watch logs one line per change instead of a report: use --log-format json, not --output json";
                Report::stopped(args.manager, args.dry_run, vec![Problem::general(refusal)])
                    .print();
                anyhow::bail!(refusal);
            }
            let mut connection = args.connection.settings();
            // Reconnects forever once connected; the first connection is waited for.
            connection.retry_initial_connect = false;
            let options = WatchOptions {
                inputs: args.files.iter().map(|file| Input::parse(file)).collect(),
                connection,
                pass: PassSettings {
                    manager: args.manager,
                    prune: args.prune,
                    allow_empty_prune: args.allow_empty_prune,
                    window: args.window,
                },
                settling: kvop::commands::watch::Settling {
                    debounce: args.debounce,
                    poll: args.poll_interval,
                },
                prune_settle: args.prune_settle,
                stale_after: args.stale_after,
                resync_interval: args.resync_interval,
                metrics_address: args.metrics_address,
            };
            kvop::commands::watch::run(&options).await?;
            Ok(0)
        }
        Command::Reconcile(args) => {
            let options = ReconcileOptions {
                inputs: args.files.iter().map(|file| Input::parse(file)).collect(),
                connection: args.connection.settings(),
                manager: args.manager,
                dry_run: args.dry_run,
                prune: args.prune,
                allow_empty_prune: args.allow_empty_prune,
                detailed_exitcode: args.detailed_exitcode,
                json: args.output == OutputFormat::Json,
                verbose: args.verbose,
                window: args.window,
                diff: if args.diff {
                    DiffMode::Shown
                } else {
                    DiffMode::Off
                },
            };
            // With --output json, a failed run has printed its report already.
            let code = reconcile::run(&options).await?;
            Ok(u8::try_from(code).unwrap_or(1))
        }
        Command::Diff(args) => {
            let options = ReconcileOptions {
                inputs: args.files.iter().map(|file| Input::parse(file)).collect(),
                connection: args.connection.settings(),
                manager: args.manager,
                dry_run: true,
                prune: args.prune,
                // A diff writes nothing: the emptied bucket is shown, not refused.
                allow_empty_prune: true,
                detailed_exitcode: false,
                json: args.output == OutputFormat::Json,
                verbose: false,
                window: kvop::nats::DEFAULT_WINDOW,
                diff: DiffMode::Command,
            };
            match reconcile::run(&options).await {
                Ok(code) => Ok(u8::try_from(code).unwrap_or(2)),
                Err(error) => {
                    // diff(1)'s convention: 2 for trouble, 1 only for differences.
                    if !options.json {
                        eprintln!("error: {error}");
                    }
                    Ok(reconcile::DIFF_ERROR as u8)
                }
            }
        }
        Command::Run(args) => {
            let mut connection = args.connection.settings();
            connection.retry_initial_connect = true;
            let leader_election = args.leader_election.then(|| {
                let namespace = args
                    .lease_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .unwrap_or_else(|| "default".into());
                let identity = args.identity.clone().unwrap_or_else(|| {
                    let host = std::env::var("POD_NAME")
                        .or_else(|_| std::env::var("HOSTNAME"))
                        .unwrap_or_else(|_| "kvop".into());
                    format!("{host}-{}", std::process::id())
                });
                (namespace, args.lease_name.clone(), identity)
            });
            let tenancy = match &args.tenants {
                Some(path) => kvop::operator::tenancy::Tenancy::load(
                    path,
                    args.object_servers(),
                    &connection,
                )?,
                None => kvop::operator::tenancy::Tenancy {
                    object_servers: args.object_servers(),
                    tenants: Vec::new(),
                },
            };
            let options = kvop::operator::OperatorOptions {
                tenancy,
                connection,
                settings: kvop::operator::context::Settings {
                    manager: args.manager.clone(),
                    resync_interval: args.resync_interval,
                    status_interval: args.status_interval,
                    namespace: args.namespace.clone(),
                    secret_refresh_interval: args.secret_refresh_interval,
                },
                namespace: args.namespace.clone(),
                metrics_address: args.metrics_address,
                leader_election,
            };
            kvop::operator::run(options).await?;
            Ok(0)
        }
        Command::Export(args) => {
            let options = kvop::commands::export::ExportOptions {
                buckets: args.buckets.clone(),
                keys: args.keys.clone(),
                json_values: args.json_values,
                sets: args.sets,
                prefix: args.prefix.clone(),
                namespace: args.namespace.clone(),
                output: args.output.clone(),
                force: args.force,
                connection: args.connection.settings(),
            };
            kvop::commands::export::run(&options).await?;
            Ok(0)
        }
        Command::Crds(args) => {
            match args.dir {
                Some(dir) => {
                    let written = kvop::crds::write_dir(&dir).map_err(|error| {
                        anyhow::anyhow!("writing the CRDs into {}: {error}", dir.display())
                    })?;
                    for path in written {
                        eprintln!("wrote {}", path.display());
                    }
                }
                None => print!(
                    "{}",
                    kvop::crds::render_all()
                        .map_err(|error| anyhow::anyhow!("rendering the CRDs: {error}"))?
                ),
            }
            Ok(0)
        }
        Command::Probe(args) => {
            let url = match &args.service_env {
                Some(prefix) => match kvop::commands::probe::service_url(prefix, &args.url) {
                    Ok(url) => url,
                    Err(error) => {
                        eprintln!("error: {error}");
                        return Ok(1);
                    }
                },
                None => args.url.clone(),
            };
            match kvop::commands::probe::probe(&url, args.timeout).await {
                Ok(status) => {
                    println!("{url}: {status}");
                    Ok(0)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    Ok(1)
                }
            }
        }
        Command::Version => {
            println!("kvop {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    }
}
