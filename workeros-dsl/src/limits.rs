//! Limits on untrusted input. Exceeding any of them is a VALIDATION error, never a stack overflow
//! or a slow query.

/// Longest filter text, in bytes (text form and JSON text alike).
pub const MAX_TEXT_LEN: usize = 16 * 1024;
/// Deepest nesting of `and` / `or` / `not` / parentheses (a lone comparison is depth 1).
pub const MAX_DEPTH: usize = 32;
/// Most filter nodes (comparisons, `and`, `or`, `not`, constants).
pub const MAX_NODES: usize = 512;
/// Most items in one list.
pub const MAX_LIST_LEN: usize = 1000;
/// Longest string literal, in bytes.
pub const MAX_STRING_LEN: usize = 4 * 1024;
/// Longest identifier, in bytes.
pub const MAX_IDENT_LEN: usize = 63;
/// Longest JSON-form filter given as a value (a request body's object), in bytes once written
/// out: room for every filter within [`MAX_TEXT_LEN`] as text, whose strings JSON may escape to
/// six bytes a character (`\u0005`), and no more.
pub const MAX_JSON_LEN: usize = 128 * 1024;
/// Most `matches` (`_regex`) comparisons in one filter.
pub const MAX_REGEXES: usize = 16;
/// Largest compiled regular expression, in bytes (`regex_lite`'s size limit).
pub const MAX_REGEX_SIZE: usize = 64 * 1024;
/// Most literal values in one filter, list items included: a filter compiles to one SQL
/// statement, whose bound parameters every database caps.
pub const MAX_VALUES: usize = 2_000;
