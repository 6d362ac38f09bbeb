//! Fuzzes the text-form parser: it must never panic, and every filter it accepts must print back
//! to text and JSON that parse to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workeros_dsl::{from_json, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = parse(src) {
        let text = f.to_text();
        if text.len() <= workeros_dsl::limits::MAX_TEXT_LEN {
            let again = parse(&text).expect("printed text parses");
            assert_eq!(again, f, "text round trip: {text}");
        } else {
            // Printing may outgrow the input limit (escapes, spacing): refused by it, nothing else.
            let e = parse(&text).expect_err("over the text limit");
            assert_eq!(e.kind(), workeros_dsl::ErrorKind::Limit);
        }
        let json = f.to_json();
        let again = from_json(&json).expect("printed JSON parses");
        assert_eq!(again, f, "JSON round trip: {json}");
    }
});
