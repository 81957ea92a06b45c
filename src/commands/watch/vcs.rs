//! Whether git is in the middle of changing the watched files. A checkout, pull, merge
//! or rebase removes the paths that go first and writes the new ones after; with a large
//! file in between, the tree is for a while neither the old commit nor the new one.
//! Applying it then would delete keys that only moved and write them back a moment
//! later. Git marks such an operation in its directory, and nothing is read while a
//! mark is there.

use std::path::{Path, PathBuf};

/// Files (in a repository's git directory) that are there only while git changes the
/// work tree or stops halfway through an operation, and what each means.
const MARKS: [(&str, &str); 7] = [
    (
        "index.lock",
        "git is writing the work tree (checkout, pull, merge, reset)",
    ),
    ("HEAD.lock", "git is moving HEAD"),
    ("MERGE_HEAD", "a git merge is in progress"),
    ("CHERRY_PICK_HEAD", "a git cherry-pick is in progress"),
    ("REVERT_HEAD", "a git revert is in progress"),
    ("rebase-merge", "a git rebase is in progress"),
    ("rebase-apply", "a git rebase or am is in progress"),
];

/// A git operation found in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The file that says so, e.g. `/repo/.git/index.lock`.
    pub mark: PathBuf,
    pub what: &'static str,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} exists)", self.what, self.mark.display())
    }
}

/// The first git operation in progress in a repository that holds a root (the nearest
/// `.git` at or above it, through links too) or lies inside one (`nested`, the `.git`
/// entries the loader's walk met).
pub fn in_progress(roots: &[PathBuf], nested: &[PathBuf]) -> Option<Operation> {
    let mut git_dirs: Vec<PathBuf> = Vec::new();
    for root in roots {
        let lexical = std::path::absolute(root).unwrap_or_else(|_| root.clone());
        let resolved = std::fs::canonicalize(root).ok();
        for start in std::iter::once(lexical).chain(resolved) {
            if let Some(git_dir) = enclosing_git_dir(&start) {
                git_dirs.push(git_dir);
            }
        }
    }
    git_dirs.extend(nested.iter().filter_map(|dot_git| git_dir_of(dot_git)));
    git_dirs.sort();
    git_dirs.dedup();
    git_dirs.iter().find_map(|git_dir| {
        MARKS.iter().find_map(|(name, what)| {
            let mark = git_dir.join(name);
            mark.symlink_metadata()
                .is_ok()
                .then_some(Operation { mark, what })
        })
    })
}

/// The git directory of the repository `path` is in: the nearest `.git` at or above it.
fn enclosing_git_dir(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find_map(|dir| git_dir_of(&dir.join(".git")))
}

/// What a `.git` entry leads to: itself when it is a directory, the `gitdir:` it names
/// when it is a file (a linked work tree, a submodule, git-sync's work trees).
fn git_dir_of(dot_git: &Path) -> Option<PathBuf> {
    let metadata = std::fs::metadata(dot_git).ok()?;
    if metadata.is_dir() {
        return Some(dot_git.to_path_buf());
    }
    let text = std::fs::read_to_string(dot_git).ok()?;
    let named = text
        .lines()
        .find_map(|line| line.strip_prefix("gitdir:"))?
        .trim();
    let base = dot_git.parent()?;
    Some(base.join(named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lock_above_the_watched_directory_is_an_operation_in_progress() {
        let repo = tempfile::tempdir().expect("tempdir");
        let watched = repo.path().join("deploy/kv");
        std::fs::create_dir_all(&watched).expect("mkdir");
        std::fs::create_dir(repo.path().join(".git")).expect("git dir");
        let roots = vec![watched.clone()];
        assert_eq!(in_progress(&roots, &[]), None);
        std::fs::write(repo.path().join(".git/index.lock"), "").expect("lock");
        let found = in_progress(&roots, &[]).expect("in progress");
        assert!(found.mark.ends_with(".git/index.lock"), "{found}");
        std::fs::remove_file(repo.path().join(".git/index.lock")).expect("unlock");
        std::fs::create_dir(repo.path().join(".git/rebase-merge")).expect("rebase");
        assert_eq!(
            in_progress(&roots, &[]).map(|found| found.what),
            Some("a git rebase is in progress")
        );
    }

    #[test]
    fn a_work_tree_whose_dot_git_is_a_file_is_followed_to_its_git_dir() {
        let base = tempfile::tempdir().expect("tempdir");
        let git_dir = base.path().join("store/worktrees/abc");
        let tree = base.path().join("trees/abc");
        std::fs::create_dir_all(&git_dir).expect("git dir");
        std::fs::create_dir_all(&tree).expect("tree");
        std::fs::write(tree.join(".git"), "gitdir: ../../store/worktrees/abc\n").expect(".git");
        let roots = vec![tree.clone()];
        assert_eq!(in_progress(&roots, &[]), None);
        std::fs::write(git_dir.join("index.lock"), "").expect("lock");
        assert!(in_progress(&roots, &[]).is_some());
    }

    #[test]
    fn a_repository_inside_the_watched_tree_counts_through_the_walk() {
        let base = tempfile::tempdir().expect("tempdir");
        let nested = base.path().join("team-a/.git");
        std::fs::create_dir_all(&nested).expect("nested repo");
        std::fs::write(nested.join("MERGE_HEAD"), "abc\n").expect("merge");
        let roots = vec![base.path().to_path_buf()];
        assert_eq!(in_progress(&roots, &[]), None, "not above the root");
        assert_eq!(
            in_progress(&roots, &[nested]).map(|found| found.what),
            Some("a git merge is in progress")
        );
    }
}
