//! The JSON report of a `kvop reconcile --output json` whose command line is refused
//! before the run starts (an invalid value such as `--window 0` or an empty
//! `KVOP_MANAGER`, an unknown flag, a missing `-f`): a program reading stdout still gets
//! its one document. A refused command line has no parsed values, so what it asks for is
//! read from the raw arguments, by clap's own description of the options.

use std::ffi::OsString;

use clap::{Arg, Command, CommandFactory, ValueEnum};

use crate::cli::{Cli, OutputFormat};
use crate::problem::Problem;
use crate::report::Report;

/// Prints the report of a command line clap refused, when the line asks for JSON.
pub fn print_if_asked(error: &clap::Error) {
    // `--help` and `--version` come as errors too, written to stdout: not refusals.
    if !error.use_stderr() {
        return;
    }
    if let Some(asked) = json_asked(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Report::stopped(
            asked.manager,
            asked.dry_run,
            vec![Problem::general(message(error))],
        )
        .print();
    }
}

/// What a refused `kvop reconcile` command line asks its report to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// As given (it may be the refused value), else the default.
    pub manager: String,
    pub dry_run: bool,
}

/// `Some` when `args` (without the program name) run `kvop reconcile` with
/// `--output json`, or with `KVOP_OUTPUT=json` and no `--output`; `env` reads the
/// environment.
pub fn json_asked(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<Asked> {
    let cli = Cli::command();
    let mut args = args
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned());
    // Global options (`--log-level debug`) may come before the subcommand.
    let subcommand = scan(&[&cli], &mut args, &mut |_, _| {})?;
    let reconcile = cli.find_subcommand(&subcommand)?;
    if reconcile.get_name() != "reconcile" {
        return None;
    }
    let (mut output, mut manager, mut dry_run) = (None, None, false);
    let mut found = |arg: &Arg, value: Option<String>| match arg.get_id().as_str() {
        "output" => output = value,
        "manager" => manager = value,
        "dry_run" => dry_run = true,
        _ => {}
    };
    // Nothing in `reconcile` is positional: a stray word is skipped, as clap would
    // refuse it anyway.
    while scan(&[reconcile, &cli], &mut args, &mut found).is_some() {}
    let from_env = |id: &str| {
        let arg = reconcile.get_arguments().find(|arg| arg.get_id() == id)?;
        env(arg.get_env()?.to_str()?)?.into_string().ok()
    };
    let output = output.or_else(|| from_env("output"))?;
    if OutputFormat::from_str(&output, false).ok()? != OutputFormat::Json {
        return None;
    }
    let default_manager = || {
        let arg = reconcile
            .get_arguments()
            .find(|arg| arg.get_id() == "manager")?;
        Some(
            arg.get_default_values()
                .first()?
                .to_string_lossy()
                .into_owned(),
        )
    };
    Some(Asked {
        manager: manager
            .or_else(|| from_env("manager"))
            .or_else(default_manager)
            .unwrap_or_default(),
        dry_run: dry_run || from_env("dry_run").is_some_and(|value| value == "true"),
    })
}

/// Reads options as clap does (`--long value`, `--long=value`, `-s value`, `-svalue`,
/// `-s=value`, flags bundled before a short option: `-vo json`) and calls `found` with
/// each option of `commands` and its value (`None` for a flag), until the first
/// argument that is not an option, which it returns; `None` at the end or at `--`.
fn scan(
    commands: &[&Command],
    args: &mut impl Iterator<Item = String>,
    found: &mut impl FnMut(&Arg, Option<String>),
) -> Option<String> {
    let find = |matches: &dyn Fn(&Arg) -> bool| {
        commands
            .iter()
            .find_map(|command| command.get_arguments().find(|arg| matches(arg)))
    };
    while let Some(arg) = args.next() {
        if arg == "--" {
            return None;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            if let Some(option) = find(&|arg| arg.get_long() == Some(name)) {
                let value = if option.get_action().takes_values() {
                    inline.or_else(|| args.next())
                } else {
                    None
                };
                found(option, value);
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|shorts| !shorts.is_empty()) {
            for (at, short) in shorts.char_indices() {
                let Some(option) = find(&|arg| arg.get_short() == Some(short)) else {
                    continue;
                };
                if !option.get_action().takes_values() {
                    found(option, None);
                    continue;
                }
                // The rest of the cluster is the value, else the next argument.
                let rest = &shorts[at + short.len_utf8()..];
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                let value = if rest.is_empty() {
                    args.next()
                } else {
                    Some(rest.to_string())
                };
                found(option, value);
                break;
            }
        } else {
            return Some(arg);
        }
    }
    None
}

/// clap's message on one line, without its `error: ` prefix, tips and usage.
fn message(error: &clap::Error) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    text.split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(line: &str, env: &[(&str, &str)]) -> Option<Asked> {
        json_asked(line.split(' ').map(OsString::from), |name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        })
    }

    fn json(manager: &str, dry_run: bool) -> Option<Asked> {
        Some(Asked {
            manager: manager.into(),
            dry_run,
        })
    }

    #[test]
    fn the_output_format_is_read_wherever_clap_would_read_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| pairs;
        for (line, environment, expected) in [
            (
                "reconcile -f d -o json --window 0",
                env(&[]),
                json("kvop", false),
            ),
            (
                "reconcile --window 0 -o json",
                env(&[]),
                json("kvop", false),
            ),
            ("reconcile -ojson --bogus", env(&[]), json("kvop", false)),
            ("reconcile -o=json", env(&[]), json("kvop", false)),
            (
                "reconcile --output=json --dry-run",
                env(&[]),
                json("kvop", true),
            ),
            (
                "reconcile -vo json --manager ci",
                env(&[]),
                json("ci", false),
            ),
            (
                "--log-level debug reconcile --output json",
                env(&[]),
                json("kvop", false),
            ),
            (
                "reconcile --window 0",
                env(&[("KVOP_OUTPUT", "json")]),
                json("kvop", false),
            ),
            (
                "reconcile -o json",
                env(&[("KVOP_MANAGER", ""), ("KVOP_DRY_RUN", "true")]),
                json("", true),
            ),
            (
                "reconcile -o json --manager m",
                env(&[("KVOP_MANAGER", "")]),
                json("m", false),
            ),
            // `-fo json` is `-f o` and a stray `json`: no output format.
            ("reconcile -fo json", env(&[]), None),
            ("reconcile -o text", env(&[("KVOP_OUTPUT", "json")]), None),
            ("reconcile -o yaml", env(&[]), None),
            ("reconcile --window 0", env(&[]), None),
            ("reconcile -- -o json", env(&[]), None),
            // `export -o` is a directory.
            (
                "export -o json --bogus",
                env(&[("KVOP_OUTPUT", "json")]),
                None,
            ),
            ("bogus -o json", env(&[]), None),
        ] {
            assert_eq!(asked(line, environment), expected, "{line} {environment:?}");
        }
    }

    #[test]
    fn the_problem_is_claps_first_paragraph_on_one_line() {
        use clap::Parser;
        let error = Cli::try_parse_from(["kvop", "reconcile", "-o", "json"]).expect_err("no -f");
        assert_eq!(
            message(&error),
            "the following required arguments were not provided: --filename <PATH>"
        );
        let error = Cli::try_parse_from(["kvop", "reconcile", "-f", "d", "--window", "0"])
            .expect_err("window 0");
        assert_eq!(
            message(&error),
            "invalid value '0' for '--window <WINDOW>': 0 is not in 1..=4096"
        );
    }
}
