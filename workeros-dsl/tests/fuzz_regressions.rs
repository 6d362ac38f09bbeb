//! Inputs that once broke (or were built to break) the parsers: each must parse or fail cleanly,
//! and whatever parses must round-trip. Add every crash the fuzzers find here, before fixing it.

#![allow(clippy::unwrap_used, clippy::panic)]

use workeros_dsl::{ErrorKind, from_json, from_json_str, parse};

/// Every parsed filter prints to JSON that parses back, and to text that parses back when it fits
/// the text limit (and is refused by that limit, and nothing else, when it does not).
fn round_trips(f: &workeros_dsl::Filter) {
    let text = f.to_text();
    if text.len() <= workeros_dsl::limits::MAX_TEXT_LEN {
        assert_eq!(&parse(&text).unwrap(), f);
    } else {
        assert_eq!(parse(&text).unwrap_err().kind(), ErrorKind::Limit);
    }
    assert_eq!(&from_json(&f.to_json()).unwrap(), f);
}

#[test]
fn printed_text_can_outgrow_the_text_limit() {
    // Found by fuzzing parse_text: a 4 KiB filter of raw control characters prints each as a
    // `\u{5}` escape, 17.9 KiB in all; that text is refused by the limit, the JSON form is not.
    let input = format!("ts in [\"{}\", \"x\"]", "\u{5}".repeat(3_442));
    assert!(input.len() <= 4_096);
    let f = parse(&input).unwrap();
    assert!(f.to_text().len() > workeros_dsl::limits::MAX_TEXT_LEN);
    round_trips(&f);
}

#[test]
fn text_inputs() {
    let inputs = [
        // Found by the JSON round-trip property: one ulp lost without serde_json's float_roundtrip.
        "a = -6.876225283112544e-178",
        "a = 5e-324",
        "a = -0.0",
        "a = 1e16",
        // Found by fuzzing parse_text: 31 `!` is depth 32, but the printed `!!…!(x)` took 33
        // parser frames and no longer parsed.
        r#"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!truer in ["10000000-0000-4000-8-00000000000b", "10000000-0000-400-8000-00000000"]"#,
        // Found by fuzzing parse_text: the text form took a list as a `between` bound, which the
        // JSON form refuses, so the printed JSON did not parse. Both refuse it now.
        "!!!!!!!!tAAAn not between 0and  [\"\"]",
        "a between [1] and 2",
        // Found by fuzzing parse_text: a literal that reads as a (malformed) variable in JSON.
        r#"t not icontains "$CURRENT_USERP""#,
        r#"a = "$user.id" || a = "$$" || a = "$""#,
        // Keywords as field names, and fields named like operators.
        "android = 1 && orange = 2 || in in [1] && is is null",
        "and = 1",
        // Escapes and Unicode.
        r#"a = "\u{10ffff}\"\\\n\t\r" && b = '\''"#,
        "a = \"\u{202e}\"",
        // Limits: just under, and far over.
        &"!".repeat(31),
        &"(".repeat(20_000),
        &format!("a in [{}]", "1,".repeat(2_000)),
        // Truncations.
        "a = $now(",
        "a = $now(-",
        "a between 1 and",
        "a in [1,",
        "a = '",
        "a = \"\\u{",
        "a = \"\\u{110000}\"",
        "",
        "!",
        "()",
    ];
    for input in inputs {
        if let Ok(f) = parse(input) {
            round_trips(&f);
        }
    }
    // The deepest tree the limits allow prints to text that parses back.
    let mut f = parse("a = 1").unwrap();
    for n in 0..31 {
        f = if n % 3 == 0 {
            workeros_dsl::Filter::Not(Box::new(f))
        } else {
            workeros_dsl::Filter::And(vec![f, parse("b = 2").unwrap()])
        };
    }
    assert_eq!(f.depth(), 32);
    round_trips(&f);
}

#[test]
fn between_bounds_are_single_values_in_both_forms() {
    let text = parse("a between 0 and [1]").unwrap_err();
    let json = from_json_str(r#"{"a": {"_between": [0, [1]]}}"#).unwrap_err();
    assert_eq!(text.message(), json.message());
}

#[test]
fn json_inputs() {
    let inputs = [
        r#"{"a": {"_eq": -6.876225283112544e-178}}"#,
        r#"{"a": {"_eq": 18446744073709551615}}"#,
        r#"{"a": {"_eq": 1e400}}"#,
        r#"{"a": {"_in": "$user.roles"}, "b": {"_between": ["$NOW(-1 day)", "$NOW"]}}"#,
        r#"{"a": {"_eq": "$CURRENT_USER.x.y"}}"#,
        r#"{"_and": [{"_or": []}, {"_and": []}, {}]}"#,
        r#"{"_not": {"_not": {}}}"#,
        r#"{"a": {"_null": "maybe"}}"#,
        r#"{"a": {}}"#,
        r#"{"": {"_eq": 1}}"#,
        &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        &format!("{}1{}", "{\"_not\":".repeat(200), "}".repeat(200)),
    ];
    for input in inputs {
        if let Ok(f) = from_json_str(input) {
            round_trips(&f);
        }
    }
}
