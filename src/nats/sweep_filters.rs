//! Key filters (NATS subject wildcards: `*` one token, `>` the rest) grouped so that no
//! consumer gets two filters that can match the same key: the server refuses that
//! (10138, "consumer subject filters cannot overlap").

/// The filters without duplicates or filters another one covers, in groups whose filters
/// never match a common key; the groups keep the order filters were given in.
pub fn disjoint_groups(filters: &[String]) -> Vec<Vec<String>> {
    let mut kept: Vec<&String> = Vec::new();
    for (index, filter) in filters.iter().enumerate() {
        let covered = filters.iter().enumerate().any(|(other_index, other)| {
            other_index != index
                && covers(other, filter)
                // Of two filters covering each other (equal), keep the first.
                && (!covers(filter, other) || other_index < index)
        });
        if !covered {
            kept.push(filter);
        }
    }
    let mut groups: Vec<Vec<String>> = Vec::new();
    for filter in kept {
        match groups
            .iter_mut()
            .find(|group| group.iter().all(|other| !overlap(other, filter)))
        {
            Some(group) => group.push(filter.clone()),
            None => groups.push(vec![filter.clone()]),
        }
    }
    groups
}

/// Whether some key matches both filters.
fn overlap(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every key `narrow` matches is matched by `wide`.
fn covers(wide: &str, narrow: &str) -> bool {
    let (mut wide, mut narrow) = (wide.split('.'), narrow.split('.'));
    loop {
        match (wide.next(), narrow.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(token)) if token != ">" => {}
            (Some(x), Some(y)) if x == y => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(filters: &[&str]) -> Vec<Vec<&'static str>> {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        disjoint_groups(&filters)
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .map(|f| &*Box::leak(f.into_boxed_str()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn disjoint_filters_share_one_consumer() {
        assert_eq!(groups(&["a.>", "b.*", "c"]), vec![vec!["a.>", "b.*", "c"]]);
    }

    #[test]
    fn covered_and_repeated_filters_are_dropped() {
        assert_eq!(groups(&["a.b", "a.>", "a.*", "a.>"]), vec![vec!["a.>"]]);
        assert_eq!(groups(&[">", "x"]), vec![vec![">"]]);
        assert_eq!(groups(&["a.*.c", "a.b.c"]), vec![vec!["a.*.c"]]);
    }

    #[test]
    fn filters_that_only_partly_overlap_go_to_separate_consumers() {
        assert_eq!(
            groups(&["a.*", "*.b", "c"]),
            vec![vec!["a.*", "c"], vec!["*.b"]]
        );
    }

    #[test]
    fn overlap_and_cover_follow_nats_wildcards() {
        assert!(overlap("a.*", "a.b") && overlap("a.>", "a.b.c") && overlap("*", "x"));
        assert!(!overlap("a.*", "a.b.c") && !overlap("a", "a.b") && !overlap("a.>", "a"));
        assert!(covers("a.>", "a.*.c") && covers("*.*", "a.b") && !covers("a.*", "a.>"));
        assert!(!covers("a.b", "a.*"));
    }
}
