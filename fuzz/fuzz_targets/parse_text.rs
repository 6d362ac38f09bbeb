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
        let again = parse(&text).expect("printed text parses");
        assert_eq!(again, f, "text round trip: {text}");
        let json = f.to_json();
        let again = from_json(&json).expect("printed JSON parses");
        assert_eq!(again, f, "JSON round trip: {json}");
    }
});
