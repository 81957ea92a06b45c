//! A line diff in unified style (`-` old, `+` new, ` ` context) for `kvop diff`: the
//! longest common subsequence of the two line lists, shown as hunks with a few lines of
//! context around each change, as `diff -u` and `git diff` print them.

/// Lines of context shown around each change.
const CONTEXT: usize = 3;

/// Above this many cells (old lines × new lines) the table would cost too much memory:
/// the old lines are shown removed and the new ones added.
const MAX_CELLS: usize = 4_000_000;

/// One line of the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
    /// Unchanged lines left out between two hunks (how many).
    Skipped(usize),
}

/// The diff of `old` against `new`, in hunks with [`CONTEXT`] lines around changes.
pub fn diff<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    hunks(&edits(old, new))
}

/// Every line, kept, removed or added, in order.
fn edits<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    // Common first and last lines need no table.
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    let mut lines: Vec<Line> = old[..prefix].iter().map(|line| Line::Same(line)).collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        lines.extend(a.iter().map(|line| Line::Removed(line)));
        lines.extend(b.iter().map(|line| Line::Added(line)));
    } else {
        lines.extend(middle(a, b));
    }
    lines.extend(
        old[old.len() - suffix..]
            .iter()
            .map(|line| Line::Same(line)),
    );
    lines
}

/// The edits between `a` and `b` by their longest common subsequence.
fn middle<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Line<'a>> {
    let width = b.len() + 1;
    // common[i * width + j]: the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i * width + j] = if a[i] == b[j] {
                common[(i + 1) * width + j + 1] + 1
            } else {
                common[(i + 1) * width + j].max(common[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j, mut lines) = (0, 0, Vec::with_capacity(a.len() + b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            lines.push(Line::Same(a[i]));
            (i, j) = (i + 1, j + 1);
        } else if common[(i + 1) * width + j] >= common[i * width + j + 1] {
            lines.push(Line::Removed(a[i]));
            i += 1;
        } else {
            lines.push(Line::Added(b[j]));
            j += 1;
        }
    }
    lines.extend(a[i..].iter().map(|line| Line::Removed(line)));
    lines.extend(b[j..].iter().map(|line| Line::Added(line)));
    lines
}

/// Keeps the changed lines and [`CONTEXT`] unchanged lines on each side of them.
fn hunks<'a>(lines: &[Line<'a>]) -> Vec<Line<'a>> {
    let changed: Vec<usize> = (0..lines.len())
        .filter(|&index| !matches!(lines[index], Line::Same(_)))
        .collect();
    let near_change = |index: usize| {
        let from = changed.partition_point(|&at| at + CONTEXT < index);
        changed.get(from).is_some_and(|&at| at <= index + CONTEXT)
    };
    let mut shown = Vec::new();
    let mut skipped = 0;
    for (index, line) in lines.iter().enumerate() {
        if near_change(index) {
            if skipped > 0 {
                shown.push(Line::Skipped(skipped));
                skipped = 0;
            }
            shown.push(line.clone());
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 && !shown.is_empty() {
        shown.push(Line::Skipped(skipped));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::{Line, diff};

    #[test]
    fn a_changed_line_shows_with_its_context_and_far_lines_are_skipped() {
        let old: Vec<String> = (1..=10).map(|n| format!("line {n}")).collect();
        let mut new = old.clone();
        new[5] = "line six".into();
        let (old, new): (Vec<&str>, Vec<&str>) = (
            old.iter().map(String::as_str).collect(),
            new.iter().map(String::as_str).collect(),
        );
        assert_eq!(
            diff(&old, &new),
            [
                Line::Skipped(2),
                Line::Same("line 3"),
                Line::Same("line 4"),
                Line::Same("line 5"),
                Line::Removed("line 6"),
                Line::Added("line six"),
                Line::Same("line 7"),
                Line::Same("line 8"),
                Line::Same("line 9"),
                Line::Skipped(1),
            ]
        );
    }

    #[test]
    fn inserted_and_removed_lines_keep_the_common_ones() {
        assert_eq!(
            diff(&["a", "b", "c"], &["a", "x", "c", "d"]),
            [
                Line::Same("a"),
                Line::Removed("b"),
                Line::Added("x"),
                Line::Same("c"),
                Line::Added("d"),
            ]
        );
        assert_eq!(diff(&["same"], &["same"]), []);
        assert_eq!(diff(&[], &["new"]), [Line::Added("new")]);
    }
}
