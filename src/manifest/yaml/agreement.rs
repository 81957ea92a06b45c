//! The fast path and the spanned parse read every case alike: the table of what the
//! two YAML crates are known to read differently (issue 15) and what kvop reads there.

use serde_json::{Value, json};

use super::{
    Document, Paths, SyntaxError, parse_documents, parse_documents_by, parse_documents_spanned,
};
use super::{block, fast};

/// Which parser read a case's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// The restricted line reader.
    Block,
    /// serde_yaml_ng, without spans.
    Fast,
    /// serde-saphyr with spans, because the text has something the others read apart.
    Spanned,
}

use Read::{Block, Fast, Spanned};

/// What one document is: its line, value and the line of every field.
fn summary(document: &Document) -> (u64, Value, Vec<(String, u64)>) {
    let lines = document
        .lines()
        .iter()
        .map(|(path, line)| (path.clone(), *line))
        .collect();
    (document.line, document.value.clone(), lines)
}

/// Whether a reader without spans read one of the documents (their field lines are
/// not known before they are asked for).
fn read_without_spans(result: &Result<Vec<Document>, SyntaxError>) -> bool {
    matches!(result, Ok(documents) if documents.iter().any(|d| d.fields.lines.get().is_none()))
}

/// Parses `text` with every combination of readers and checks each agrees with the
/// spanned parse (values, lines, errors); returns the values and which reader the
/// routed parse used.
pub(super) fn both(text: &str) -> Result<(Vec<Value>, Read), String> {
    let spanned = parse_documents_spanned(text);
    let mut read = Spanned;
    for (paths, reader) in [
        (Paths::FastAndSpanned, Fast),
        (Paths::BlockAndSpanned, Block),
        (Paths::All, Spanned),
    ] {
        let routed = parse_documents_by(text, paths);
        if read_without_spans(&routed) && reader != Spanned {
            read = reader;
        }
        match (routed, &spanned) {
            (Ok(routed), Ok(spanned)) => {
                let routed: Vec<_> = routed.iter().map(summary).collect();
                let spanned: Vec<_> = spanned.iter().map(summary).collect();
                assert_eq!(routed, spanned, "{text:?}: {paths:?} reads it apart");
            }
            (Err(routed), Err(spanned)) => {
                assert_eq!(&routed, spanned, "{text:?}: {paths:?} refuses it apart");
            }
            (routed, spanned) => panic!("{text:?}: {paths:?} {routed:?}, spanned {spanned:?}"),
        }
    }
    match spanned {
        Ok(documents) => Ok((documents.iter().map(|d| d.value.clone()).collect(), read)),
        Err(error) => Err(error.message),
    }
}

/// One document `a: <scalar>` and the value kvop reads for `a`.
#[test]
fn scalars_read_alike_and_as_yaml_1_1() {
    let cases: &[(&str, Value, Read)] = &[
        // YAML 1.1 booleans, as kubectl reads them (serde-saphyr in any letter case).
        ("yes", json!(true), Spanned),
        ("on", json!(true), Spanned),
        ("Off", json!(false), Spanned),
        ("y", json!(true), Spanned),
        ("n", json!(false), Spanned),
        ("tRue", json!(true), Spanned),
        ("yes sir", json!("yes sir"), Block),
        ("true", json!(true), Block),
        ("True", json!(true), Block),
        ("FALSE", json!(false), Block),
        // Numbers.
        ("100", json!(100), Block),
        ("-7", json!(-7), Block),
        ("0", json!(0), Block),
        ("1.5", json!(1.5), Block),
        ("-0.25", json!(-0.25), Block),
        (
            "9223372036854775807",
            json!(9223372036854775807_i64),
            Spanned,
        ),
        ("0x1F", json!(31), Spanned),
        ("0o17", json!(15), Spanned),
        ("0b101", json!(5), Spanned),
        ("+12", json!(12), Spanned),
        ("1_000", json!(1000), Spanned),
        ("1e3", json!(1000.0), Spanned),
        ("1.0e+3", json!(1000.0), Spanned),
        (".5", json!(0.5), Spanned),
        ("017", json!(15), Spanned),
        ("0X1F", json!("0X1F"), Spanned),
        ("1:20", json!("1:20"), Spanned),
        // Null.
        ("~", Value::Null, Block),
        ("null", Value::Null, Block),
        ("NULL", Value::Null, Block),
        ("", Value::Null, Block),
        // Strings that only look like the above.
        ("\"yes\"", json!("yes"), Block),
        ("'017'", json!("017"), Block),
        ("\"0000123\"", json!("0000123"), Block),
        ("inf", json!("inf"), Spanned),
        ("12 monkeys", json!("12 monkeys"), Fast),
        ("x#c # comment", json!("x#c"), Block),
        ("http://x:80/y", json!("http://x:80/y"), Block),
        ("{\"b\":yes}", json!({"b": true}), Spanned),
        ("{\"b\":1}", json!({"b": 1}), Fast),
        ("2001-12-14", json!("2001-12-14"), Spanned),
        ("\"\\u00e9\\x41\\t\\N\\/\"", json!("\u{e9}A\t\u{85}/"), Fast),
        ("'it''s'", json!("it's"), Block),
        ("\"a\\\n  b\"", json!("ab"), Fast),
    ];
    let mut wrong = Vec::new();
    for (scalar, expected, path) in cases {
        let text = format!("a: {scalar}\n");
        match both(&text) {
            Ok((values, read)) => {
                if values != [json!({ "a": expected })] || read != *path {
                    wrong.push(format!("{scalar:?}: read {values:?} by {read:?}"));
                }
            }
            Err(message) => wrong.push(format!("{scalar:?}: refused: {message}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn non_finite_floats_are_refused_both_ways() {
    for scalar in [".inf", "-.Inf", ".nan", "1e400"] {
        let message = both(&format!("a: {scalar}\n")).expect_err(scalar);
        assert!(
            message.contains("not a finite number"),
            "{scalar}: {message}"
        );
    }
}

#[test]
fn block_scalars_and_their_chomping_read_alike() {
    let cases: &[(&str, &str)] = &[
        ("|\n  x\n  z\n\n", "x\nz\n"),
        ("|-\n  x\n\n", "x"),
        ("|+\n  x\n\n\n", "x\n\n\n"),
        (">\n  x\n  w\n\n  z\n", "x w\nz\n"),
        (">-\n  x\n   w\n  z\n", "x\n w\nz"),
        ("|2\n   x\n", " x\n"),
        ("|\n  ---not a marker\n  x\n", "---not a marker\nx\n"),
        ("x\n  w\n\n  z\n", "x w\nz"),
        ("\"multi\n  line\n\n  x\"\n", "multi line\nx"),
    ];
    // Cut off by the end of the input: serde-saphyr keeps a line break, libyaml not.
    for (text, expected) in [("a: |\n  x", "x\n"), ("a: >\n  x\n  z", "x z\n")] {
        let (values, read) = both(text).expect(text);
        assert_eq!((values, read), (vec![json!({ "a": expected })], Spanned));
    }
    for (scalar, expected) in cases {
        let text = format!("a: {scalar}");
        let (values, read) = both(&text).expect(scalar);
        assert_eq!(values, [json!({ "a": expected })], "{scalar:?}");
        assert_eq!(read, Fast, "{scalar:?}");
        let crlf = text.replace('\n', "\r\n");
        let (values, read) = both(&crlf).expect(scalar);
        assert_eq!(values, [json!({ "a": expected })], "{crlf:?}: CRLF");
        assert_eq!(read, Fast, "{crlf:?}");
    }
}

#[test]
fn anchors_merge_keys_and_tags_go_the_spanned_way() {
    let cases: &[(&str, Value)] = &[
        ("a: &x 1\nb: *x\n", json!({"a": 1, "b": 1})),
        (
            "a: &x {c: 1}\nb: *x\n",
            json!({"a": {"c": 1}, "b": {"c": 1}}),
        ),
        (
            "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n",
            json!({"base": {"x": 1}, "m": {"x": 1, "y": 2}}),
        ),
        ("<<: {a: 1}\nb: 2\n", json!({"a": 1, "b": 2})),
        ("a: !!str 1\n", json!({"a": "1"})),
        ("a: !!int \"1\"\n", json!({"a": 1})),
    ];
    for (text, expected) in cases {
        let (values, read) = both(text).expect(text);
        assert_eq!(values, std::slice::from_ref(expected), "{text:?}");
        assert_eq!(read, Spanned, "{text:?}");
    }
}

/// Ten levels of ten aliases each: 10¹⁰ nodes if expanded.
fn alias_bomb() -> String {
    let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*l{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_is_refused_by_both_parsers_quickly() {
    let text = alias_bomb();
    let started = std::time::Instant::now();
    // Each parse expands it up to the budget: the routed and the reference parse only,
    // not every combination `both` tries.
    let message = parse_documents(&text).expect_err("an alias bomb");
    assert_eq!(parse_documents_spanned(&text).err(), Some(message.clone()));
    assert!(message.message.contains("alias bomb"), "{message:?}");
    // The other readers would refuse it too, were they given the text.
    assert_eq!(fast::parse(&text), None);
    assert_eq!(block::parse(&text), None);
    // Not a timing assertion on the code under test's speed: an expanded bomb takes
    // minutes and gigabytes, a refused one milliseconds.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn duplicate_and_non_string_keys_read_as_the_spanned_parse_reads_them() {
    let message = both("a: 1\nb: 2\na: 3\n").expect_err("a duplicate key");
    assert!(message.contains("duplicate key"), "{message}");
    let message = both("x:\n  a: {b: 1, b: 2}\n").expect_err("a duplicate key in flow");
    assert!(message.contains("duplicate key"), "{message}");
    assert!(both("~: a\n").is_err(), "a null key");
    assert!(both("? [a]\n: b\n").is_err(), "a sequence as key");
    // Keys are read as their text; those serde_yaml_ng reads as other than a string
    // (`1`, `true`, `0x1F`) go the spanned way.
    for (keys, read) in [
        ("1: a\n", Block),
        ("true: a\n", Block),
        ("0x1F: a\n", Block),
        ("yes: a\n", Block),
        ("n: a\n", Block),
        ("017: a\n", Block),
        ("1_000: a\n", Block),
    ] {
        let key = keys.split(':').next().unwrap_or_default();
        let (values, path) = both(keys).expect(keys);
        assert_eq!(
            (values, path),
            (vec![json!({ key: "a" })], read),
            "{keys:?}"
        );
    }
}

#[test]
fn tabs_byte_order_marks_and_line_breaks_read_alike() {
    let cases: &[(&str, Value, Read)] = &[
        ("a:\t1\n", json!({"a": 1}), Spanned),
        ("a: \"x\ty\"\n", json!({"a": "x\ty"}), Spanned),
        ("\u{feff}a: 1\n", json!({"a": 1}), Spanned),
        (
            "a: 1\r\nb: [x, z]\r\n",
            json!({"a": 1, "b": ["x", "z"]}),
            Fast,
        ),
        (
            "a: 1\r\nb: [x, y]\r\n",
            json!({"a": 1, "b": ["x", true]}),
            Spanned,
        ),
        ("a: 1\rb: 2\r", json!({"a": 1, "b": 2}), Spanned),
        ("a: x\u{85}y\n", json!({"a": "x\u{85}y"}), Spanned),
        ("a: x\u{2028}y\n", json!({"a": "x\u{2028}y"}), Spanned),
        (
            "a: caf\u{e9} \u{1f600}\n",
            json!({"a": "caf\u{e9} \u{1f600}"}),
            Fast,
        ),
    ];
    for (text, expected, path) in cases {
        let (values, read) = both(text).expect(text);
        assert_eq!((values, read), (vec![expected.clone()], *path), "{text:?}");
    }
    assert!(both("a: \"\u{7}\"\n").is_err(), "a control character");
}

#[test]
fn multi_document_edge_cases_read_alike() {
    let cases: &[(&str, Vec<Value>)] = &[
        ("a: 1\n---\nb: 2\n", vec![json!({"a": 1}), json!({"b": 2})]),
        ("---\n---\na: 1\n---\n", vec![json!({"a": 1})]),
        ("--- ~\n---\n# only a comment\n", vec![]),
        ("", vec![]),
        ("--- plain\n--- [1]\n", vec![json!("plain"), json!([1])]),
        (
            "a: 1\n...\nb: 2\n---\nc: 3\n",
            vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})],
        ),
        ("%YAML 1.2\n---\na: 1\n", vec![json!({"a": 1})]),
        (
            "a: |\n  ---x\n---\nb: 1\n",
            vec![json!({"a": "---x\n"}), json!({"b": 1})],
        ),
        (
            "a: 1\n---\u{a0}x: 2\n",
            vec![json!({"a": 1, "---\u{a0}x": 2})],
        ),
    ];
    for (text, expected) in cases {
        let (values, _) = both(text).expect(text);
        assert_eq!(&values, expected, "{text:?}");
    }
    // A comment glued to a flow collection or a quoted scalar: refused, with its line.
    // And a dash or colon right before a flow indicator.
    for text in [
        "a: {b: 1}#c\n",
        "a: [1]#c\n",
        "a: \"x\"#c\n",
        "a: 1\n---\nb: 'x'#c\n",
        "a: {-}\n",
        "a: |#c\n  x\n",
        "a: \n|\n",
        "a: [-]\n",
    ] {
        assert!(both(text).is_err(), "{text:?}");
    }
    // An unclosed flow in the second document names its line, whichever path.
    assert!(both("a: 1\n---\nb: [1\n").is_err());
}

#[test]
fn deep_nesting_reads_alike() {
    // Unoptimized, serde-saphyr's spanned parse needs more than a test thread's 2 MiB
    // for its 64 levels (a release build does not).
    let run = std::thread::Builder::new().stack_size(64 << 20).spawn(|| {
        for depth in [10, 47, 48, 49, 63, 64, 65, 100, 129, 2_000] {
            let text = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
            let result = both(&text);
            // The document is one level deeper than its brackets.
            assert_eq!(result.is_ok(), depth < 64, "{depth}: {result:?}");
        }
    });
    run.expect("thread").join().expect("no disagreement");
}

/// Issue 16, defect 14: an unknown tag was dropped (`!foo {a: 1}` read as `{a: 1}`).
#[test]
fn unknown_tags_are_refused_with_their_line() {
    for text in [
        "a: 1\nb: !foo {c: 1}\n",
        "a: !secret hunter2\n",
        "a:\n  - !<tag:example.com,2000:x> 1\n",
    ] {
        let message = both(text).expect_err(text);
        assert!(message.contains("tag"), "{text:?}: {message}");
        let line = parse_documents(text).expect_err(text).line;
        assert_eq!(line, Some(text.lines().count() as u64), "{text:?}");
    }
    // The standard tags keep their meaning.
    let (values, _) = both("a: !!str 1\nb: !!int \"2\"\nc: !!float 3\n").expect("core tags");
    assert_eq!(values, [json!({"a": "1", "b": 2, "c": 3.0})]);
}

/// Issue 16, defect 5: integers changed silently (`123456789012345678901234567890`
/// became `1.2345678901234568e29`, `017` became `17.0`).
#[test]
fn integers_are_kept_exactly_or_refused() {
    // YAML 1.1, as kubectl reads it: a leading zero is octal.
    let (values, _) = both("a: 017\nb: -017\nc: 0o17\nd: 0\n").expect("octal");
    assert_eq!(values, [json!({"a": 15, "b": -15, "c": 15, "d": 0})]);
    let (values, _) = both("a: 18446744073709551615\nb: -9223372036854775808\n").expect("64 bits");
    assert_eq!(
        values,
        [json!({"a": 18446744073709551615_u64, "b": -9223372036854775808_i64})]
    );
    for (text, line) in [
        ("a: 123456789012345678901234567890\n", 1),
        ("a: 1\nb:\n  c: 18446744073709551616\n", 3),
        ("a: [-9223372036854775809]\n", 1),
    ] {
        let error = parse_documents(text).expect_err(text);
        assert_eq!(error.line, Some(line), "{text:?}: {error:?}");
        assert!(
            error.message.contains("cannot be kept exactly"),
            "{error:?}"
        );
        assert_eq!(both(text).expect_err(text), error.message);
    }
    // Floats stay floats, and quoted digits strings.
    let (values, _) =
        both("a: 1e3\nb: 1.5\nc: \"123456789012345678901234567890\"\n").expect("floats");
    assert_eq!(
        values,
        [json!({"a": 1000.0, "b": 1.5, "c": "123456789012345678901234567890"})]
    );
}
