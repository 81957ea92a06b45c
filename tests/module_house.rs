//! The house drawn from the code's imports: every `crate::` and `super::` path in `src/`
//! (test modules aside) is an arrow from the module that writes it to the module it
//! names. Among the modules of any one directory the arrows make no circle, and at the
//! top they only run down the house that `src/lib.rs` lists: the words every stage
//! shares, the pipeline in the order it runs (a stage uses only earlier stages), what a
//! running program needs, the front doors. NATS is reached only through `src/nats/`, and
//! its writes only by `apply`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top of the house, lowest layer first. A new top-level module must be placed here.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "the words",
        &[
            "api",
            "desired",
            "error_chain",
            "names",
            "observed",
            "ownership",
            "problem",
            "spec",
            "units",
        ],
    ),
    // In run order: a stage may use the stages before it, never one after it.
    (
        "the pipeline",
        &["manifest", "nats", "plan", "pass", "apply", "report"],
    ),
    (
        "the program",
        &["metrics", "progress", "server", "telemetry"],
    ),
    ("the front doors", &["cli", "commands", "crds", "operator"]),
];

const PIPELINE: usize = 1;

type ModulePath = Vec<String>;

/// One arrow, with the file that draws it (for the failure message).
#[derive(Debug, Clone)]
struct Arrow {
    from: ModulePath,
    to: ModulePath,
    file: PathBuf,
}

#[test]
fn no_modules_of_one_directory_import_each_other_in_a_circle() {
    let arrows = arrows();
    let mut circles = Vec::new();
    for (scope, graph) in sibling_graphs(&arrows) {
        for component in strongly_connected(&graph) {
            if component.len() > 1 {
                let evidence: Vec<String> = arrows
                    .iter()
                    .filter_map(|arrow| {
                        let (from, to) = siblings(arrow)?;
                        (from.0 == scope && component.contains(&from.1) && component.contains(&to))
                            .then(|| format!("{} -> {} ({})", from.1, to, arrow.file.display()))
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                circles.push(format!(
                    "in `{}`: {:?}\n    {}",
                    if scope.is_empty() {
                        "crate".to_string()
                    } else {
                        scope.join("::")
                    },
                    component,
                    evidence.join("\n    ")
                ));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules import each other in a circle:\n  {}",
        circles.join("\n  ")
    );
}

#[test]
fn top_level_arrows_run_only_down_the_house() {
    let place = |module: &str| {
        LAYERS.iter().enumerate().find_map(|(layer, (_, modules))| {
            let index = modules.iter().position(|name| *name == module)?;
            Some((layer, index))
        })
    };
    let mut unplaced = BTreeSet::new();
    let mut upward = BTreeSet::new();
    for arrow in arrows() {
        let Some(((scope, from), to)) = siblings(&arrow) else {
            continue;
        };
        if !scope.is_empty() {
            continue;
        }
        let (Some(from_at), Some(to_at)) = (place(&from), place(&to)) else {
            for module in [&from, &to] {
                if place(module).is_none() {
                    unplaced.insert(module.clone());
                }
            }
            continue;
        };
        let down = to_at.0 < from_at.0
            || (to_at.0 == from_at.0 && (from_at.0 != PIPELINE || to_at.1 < from_at.1));
        if !down {
            upward.insert(format!(
                "{from} ({}) -> {to} ({}) in {}",
                LAYERS[from_at.0].0,
                LAYERS[to_at.0].0,
                relative(&arrow.file)
            ));
        }
    }
    assert!(
        unplaced.is_empty(),
        "top-level modules not placed in the house (add them to LAYERS in this test and to src/lib.rs's groups): {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "arrows running up the house (a stage using a later stage or a front door):\n  {}",
        upward.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn only_the_nats_seam_speaks_to_nats_and_only_apply_writes_through_it() {
    let mut leaks = Vec::new();
    for (path, module) in source_files() {
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        let top = module.first().map(String::as_str);
        if top != Some("nats") && code.contains("async_nats::") {
            leaks.push(format!("{} uses async_nats", relative(&path)));
        }
        if !matches!(top, Some("nats" | "apply")) && code.contains("BucketWrites") {
            leaks.push(format!(
                "{} names BucketWrites, the seam apply writes through",
                relative(&path)
            ));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[test]
fn the_drawing_sees_the_arrows_known_to_be_there() {
    // A parser that found nothing would pass every test above.
    let arrows = arrows();
    let has = |from: &str, to: &str| {
        arrows
            .iter()
            .any(|arrow| arrow.from.join("::") == from && arrow.to.join("::").starts_with(to))
    };
    for (from, to) in [
        ("apply", "plan"),
        ("pass", "nats"),
        ("nats::observe", "nats::bucket"),
        ("operator::entry", "operator::context"),
        ("commands::watch::pass", "commands::watch::memory"),
    ] {
        assert!(has(from, to), "the drawing misses {from} -> {to}");
    }
    // Braced groups: `use crate::desired::{Desired, DesiredEntry}` in observe.
    assert!(has("nats::observe", "desired"));
}

/// Every arrow of `src/`, test modules aside.
fn arrows() -> Vec<Arrow> {
    let files = source_files();
    let modules: BTreeSet<ModulePath> = files.iter().map(|(_, module)| module.clone()).collect();
    let mut arrows = Vec::new();
    for (path, module) in &files {
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        for named in named_paths(&code) {
            let Some(absolute) = absolute(module, &named) else {
                continue;
            };
            // The longest prefix that is a module: `crate::plan::EntryAction` is `plan`.
            let target = (1..=absolute.len())
                .rev()
                .map(|length| absolute[..length].to_vec())
                .find(|prefix| modules.contains(prefix));
            if let Some(to) = target {
                arrows.push(Arrow {
                    from: module.clone(),
                    to,
                    file: path.clone(),
                });
            }
        }
    }
    arrows
}

/// The two sibling modules an arrow joins, under their common parent: `(parent, from)`
/// and `to`. `None` for an arrow to an ancestor or descendant.
fn siblings(arrow: &Arrow) -> Option<((ModulePath, String), String)> {
    let common = arrow
        .from
        .iter()
        .zip(&arrow.to)
        .take_while(|(a, b)| a == b)
        .count();
    let from = arrow.from.get(common)?;
    let to = arrow.to.get(common)?;
    Some(((arrow.from[..common].to_vec(), from.clone()), to.clone()))
}

/// For each directory, which of its modules import which.
fn sibling_graphs(arrows: &[Arrow]) -> BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> {
    let mut graphs: BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for arrow in arrows {
        if let Some(((scope, from), to)) = siblings(arrow) {
            graphs
                .entry(scope)
                .or_default()
                .entry(from)
                .or_default()
                .insert(to);
        }
    }
    graphs
}

/// The strongly connected components of `graph` (Tarjan's algorithm, small graphs).
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g str) {
        let number = state.index.len();
        state.index.insert(node, number);
        state.low.insert(node, number);
        state.stack.push(node);
        state.on_stack.insert(node);
        for next in state.graph.get(node).into_iter().flatten() {
            if !state.index.contains_key(next.as_str()) {
                visit(state, next);
                let low = state.low[node].min(state.low[next.as_str()]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next.as_str()) {
                let low = state.low[node].min(state.index[next.as_str()]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = BTreeSet::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.insert(member.to_string());
                if member == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.components
}

/// Each library source file and its module path (`src/nats/mod.rs` is `nats`,
/// `src/pass/check.rs` is `pass::check`), test modules left out: a test may reach
/// anywhere.
fn source_files() -> Vec<(PathBuf, ModulePath)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut module: ModulePath = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module == ["main"] || module.iter().any(|part| part == "tests") {
                return None;
            }
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            Some((path, module))
        })
        .collect()
}

/// The code of a file without its comments and its test-only items: a `#[cfg(test)]`
/// declaration (`mod faults;`) is left out alone, an inline `#[cfg(test)] mod tests {`
/// with the rest of the file (kvop puts it last).
fn code_of(text: &str) -> String {
    let mut code = Vec::new();
    let mut lines = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"));
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            code.push(line);
            continue;
        }
        match lines.next() {
            Some(item) if item.trim_end().ends_with(';') => continue,
            _ => break,
        }
    }
    code.join("\n")
}

/// Every path the code names from `crate::` or `super::`, braced groups expanded:
/// `use crate::{plan::Plan, nats}` names `crate::plan::Plan` and `crate::nats`.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let start = ["crate::", "super::"]
            .iter()
            .filter_map(|root| rest.find(root).map(|offset| (offset, *root)))
            .min();
        let Some((offset, root)) = start else { break };
        let position = at + offset;
        at = position + root.len();
        let joined = position > 0 && {
            let before = bytes[position - 1];
            before.is_ascii_alphanumeric() || before == b'_' || before == b':'
        };
        if joined {
            continue;
        }
        let head = root.trim_end_matches("::").to_string();
        let (paths, end) = parse_paths(code, at);
        at = end.max(at);
        for path in paths {
            let mut full = vec![head.clone()];
            full.extend(path);
            found.push(full);
        }
    }
    found
}

/// Parses a path tail or a braced group at `at`; returns the paths and where it ended.
fn parse_paths(code: &str, at: usize) -> (Vec<Vec<String>>, usize) {
    let skip_space = |mut at: usize| {
        while code[at..].starts_with(char::is_whitespace) {
            at += code[at..].chars().next().unwrap().len_utf8();
        }
        at
    };
    let at = skip_space(at);
    if code[at..].starts_with('{') {
        let mut paths = Vec::new();
        let mut at = at + 1;
        loop {
            at = skip_space(at);
            if code[at..].starts_with('}') {
                return (paths, at + 1);
            }
            let (inner, end) = parse_paths(code, at);
            paths.extend(inner);
            at = skip_space(end);
            if code[at..].starts_with(',') {
                at += 1;
            } else if code[at..].starts_with('}') {
                return (paths, at + 1);
            } else {
                return (paths, at);
            }
        }
    }
    let length = code[at..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(code.len() - at);
    if length == 0 {
        return (vec![Vec::new()], at);
    }
    let name = code[at..at + length].to_string();
    let end = at + length;
    if code[end..].starts_with("::") {
        let (tails, end) = parse_paths(code, end + 2);
        let paths = tails
            .into_iter()
            .map(|tail| {
                let mut path = vec![name.clone()];
                path.extend(tail);
                path
            })
            .collect();
        return (paths, end);
    }
    (vec![vec![name]], end)
}

/// `named` (starting `crate` or `super`) as a path from the crate root, as seen from
/// `module`; `None` when it climbs above the root.
fn absolute(module: &ModulePath, named: &[String]) -> Option<ModulePath> {
    let mut parts = named.iter().peekable();
    let mut base = match parts.next()?.as_str() {
        "crate" => Vec::new(),
        _ => module[..module.len().checked_sub(1)?].to_vec(),
    };
    while parts.peek().is_some_and(|part| *part == "super") {
        parts.next();
        base.pop()?;
    }
    base.extend(
        parts
            .filter(|part| !matches!(part.as_str(), "self" | "*"))
            .cloned(),
    );
    Some(base)
}

/// `path` from the crate's directory, for messages.
fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
