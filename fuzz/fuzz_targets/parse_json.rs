//! Fuzzes the JSON-form parser (from JSON text): it must never panic, every filter it accepts
//! must print back to JSON and text that parse to the same tree, and the one-walk `check_json`
//! must accept exactly what `from_json` + `check` accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use workeros_dsl::{Schema, ValueKind, check_json, from_json, from_json_str, parse};

/// The fields of the test table (`tests/src/table.rs`), which the seeds use.
fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::of([
            ("t", ValueKind::Text),
            ("lt", ValueKind::Text),
            ("i", ValueKind::Integer),
            ("n", ValueKind::Number),
            ("b", ValueKind::Boolean),
            ("j", ValueKind::Json),
            ("ts", ValueKind::Timestamp),
            ("u", ValueKind::Uuid),
            ("r", ValueKind::Uuid),
            ("rm", ValueKind::Json),
            ("id", ValueKind::Integer),
        ])
        .expect("valid schema")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = from_json_str(src) {
        let json = f.to_json();
        let again = from_json(&json).expect("printed JSON parses");
        assert_eq!(again, f, "JSON round trip: {json}");
        let text = f.to_text();
        if text.len() <= workeros_dsl::limits::MAX_TEXT_LEN {
            let again = parse(&text).expect("printed text parses");
            assert_eq!(again, f, "text round trip: {text}");
        } else {
            // Printing may outgrow the input limit (escapes, spacing): refused by it, nothing else.
            let e = parse(&text).expect_err("over the text limit");
            assert_eq!(e.kind(), workeros_dsl::ErrorKind::Limit);
        }
    }
    if src.len() <= 16 * 1024
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(src)
    {
        let direct = check_json(&v, schema());
        let staged = from_json(&v).and_then(|f| f.check(schema()));
        assert_eq!(
            direct.is_ok(),
            staged.is_ok(),
            "check_json {:?} vs from_json + check {:?}",
            direct.err(),
            staged.err()
        );
        if let (Ok(a), Ok(b)) = (direct, staged) {
            assert_eq!(a.variables(), b.variables());
        }
    }
});
