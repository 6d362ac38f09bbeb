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
