use super::read::PARALLEL_MIN_BYTES;
use super::slices::document_slices;
use super::*;

#[test]
fn lines_are_recorded_for_every_field_of_every_document() {
    let text = "a: 1\nb:\n  c: x\n---\n\n# comment\nlist:\n  - name: y\n    v: |\n      text\n";
    let documents = parse_documents(text).expect("valid yaml");
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0].lines()["a"], 1);
    assert_eq!(documents[0].lines()["b.c"], 3);
    assert_eq!(documents[1].lines()["list"], 7);
    assert_eq!(documents[1].lines()["list[0].name"], 8);
    assert_eq!(documents[1].value["list"][0]["v"], "text\n");
    assert_eq!(documents[1].line_of("list[0].missing"), 8);
}

#[test]
fn syntax_errors_carry_their_line() {
    let error = parse_documents("a: 1\nb: [1, 2\nc: 3\n").expect_err("unclosed flow");
    assert!(error.line.is_some(), "{error:?}");
}

#[test]
fn a_syntax_error_costs_only_its_document() {
    let text = "a: 1\n---\nb: [unclosed\n---\nc: 3\n---\nd: {also: unclosed\n---\ne: 5\n";
    let parsed = parse_each_document(text);
    let values: Vec<&serde_json::Value> = parsed
        .documents
        .iter()
        .map(|document| &document.value)
        .collect();
    assert_eq!(
        values,
        [
            &serde_json::json!({"a": 1}),
            &serde_json::json!({"c": 3}),
            &serde_json::json!({"e": 5})
        ]
    );
    let lines: Vec<Option<u64>> = parsed.errors.iter().map(|error| error.line).collect();
    assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
    assert!(
        lines[0].is_some_and(|line| (3..=4).contains(&line)),
        "{:?}",
        parsed.errors
    );
    assert!(
        lines[1].is_some_and(|line| (7..=8).contains(&line)),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn duplicate_keys_are_an_error() {
    assert!(parse_documents("a: 1\na: 2\n").is_err());
}

#[test]
fn a_large_file_parsed_in_pieces_keeps_every_document_and_line() {
    let document =
        |i: usize| format!("---\nname: doc{i}\nvalue: |\n  ---not a marker\n  text {i}\n");
    let text: String = (0..20_000).map(document).collect();
    assert!(text.len() >= PARALLEL_MIN_BYTES);
    assert_eq!(
        document_slices(&text).map(|slices| slices.len()),
        Some(20_000)
    );
    let documents = parse_documents(&text).expect("valid yaml");
    assert_eq!(documents.len(), 20_000);
    for i in [0, 9_999, 10_000, 19_999] {
        assert_eq!(documents[i].value["name"], format!("doc{i}"));
        assert_eq!(
            documents[i].lines()["name"],
            (i * 5 + 2) as u64,
            "line of doc{i}"
        );
    }
    let broken = format!("{text}---\nname: [unclosed\n");
    let error = parse_documents(&broken).expect_err("syntax error");
    assert!(error.line.is_some_and(|line| line >= 100_001), "{error:?}");
}

#[test]
fn field_lines_found_on_demand_match_a_parse_with_spans() {
    let text = "# leading comment\n\na: 1\nb:\n  c: [1, 2]\n---   # marker comment\n\n\
                    list:\n  - name: z\n    v: |\n      ---not a marker\n---\n\
                    {inline: true, n: {m: 2}}\n--- plain scalar\n";
    let fast = parse_documents(text).expect("valid yaml");
    let spanned = parse_spanned(text, 0).expect("valid yaml");
    assert_eq!(fast.len(), 4);
    // The mappings; a document that is a scalar is parsed with spans.
    assert!(
        fast[..3]
            .iter()
            .all(|document| document.fields.lines.get().is_none())
    );
    for (fast, spanned) in fast.iter().zip(&spanned) {
        assert_eq!(fast.value, spanned.value);
        assert_eq!(fast.line, spanned.line, "{:?}", fast.value);
        assert_eq!(fast.lines(), spanned.lines());
    }
    assert_eq!(fast[0].line, 3);
    assert_eq!(fast[1].line_of("list[0].v"), 10);
    assert_eq!(fast[2].line_of("n.m"), 13);
}

#[test]
fn documents_after_an_end_marker_or_directives_keep_their_lines() {
    let documents = parse_documents("a: 1\n...\nb: 2\n---\nc: 3\n").expect("valid yaml");
    let lines: Vec<u64> = documents.iter().map(|document| document.line).collect();
    assert_eq!(lines, [1, 3, 5]);
    assert_eq!(documents[1].line_of("b"), 3);
    let documents = parse_documents("%YAML 1.2\n---\na: 1\n---\nb: 2\n").expect("valid yaml");
    assert_eq!(documents[1].line_of("b"), 5);
    for breaks in ["\r\n", "\r"] {
        let text = ["a: 1", "---", "# c", "b: 2", "---", "c: 3", ""].join(breaks);
        let documents = parse_documents(&text).expect("valid yaml");
        assert_eq!(documents[1].line, 4, "{breaks:?}");
        assert_eq!(documents[2].line_of("c"), 6, "{breaks:?}");
    }
    let documents = parse_documents("---\n...\nb: 2\n").expect("valid yaml");
    assert_eq!(
        documents[0].line, 3,
        "an empty document before the end marker"
    );
    let documents = parse_documents("\u{feff}# c\n\nkind: x\n").expect("valid yaml");
    assert_eq!(documents[0].line, 3, "a byte order mark");
    let documents = parse_documents("a: 1\n---\u{a0}x: 2\n").expect("valid yaml");
    assert_eq!(
        documents.len(),
        1,
        "a no-break space does not make a marker"
    );
    assert_eq!(documents[0].value["---\u{a0}x"], 2);
    let mixed = parse_documents("a: 1\r# c\n---\nb: 2\n").expect("valid yaml");
    assert_eq!(mixed[1].line_of("b"), 4, "a lone \\r breaks a line too");
}

#[test]
fn empty_documents_are_skipped() {
    let documents = parse_documents("---\n---\na: 1\n---\n").expect("valid yaml");
    assert_eq!(documents.len(), 1);
}

#[test]
fn deep_documents_in_a_file_parsed_on_several_threads_do_not_overflow_their_stacks() {
    // Each thread parsing a large file gets a stack for 64 levels; with the default
    // 2 MiB an unoptimized build aborted on this file.
    let filler: String = (0..20_000)
        .map(|i| format!("---\nname: doc{i}\nvalue: text\n"))
        .collect();
    let deep = |depth: usize| format!("---\na: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let text = format!("{filler}{}{filler}{}", deep(62), deep(70));
    assert!(text.len() >= PARALLEL_MIN_BYTES);
    let parsed = parse_each_document(&text);
    assert_eq!(parsed.documents.len(), 40_001, "the 62-level one is read");
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    assert!(
        parsed.errors[0].message.contains("levels deep"),
        "{:?}",
        parsed.errors
    );
}
