//! Fuzzes the JSON-form parser (from JSON text): it must never panic, and every filter it accepts
//! must print back to JSON and text that parse to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workeros_dsl::{from_json, from_json_str, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = from_json_str(src) {
        let json = f.to_json();
        let again = from_json(&json).expect("printed JSON parses");
        assert_eq!(again, f, "JSON round trip: {json}");
        let text = f.to_text();
        let again = parse(&text).expect("printed text parses");
        assert_eq!(again, f, "text round trip: {text}");
    }
});
