//! Shared inputs of the workeros criterion benches (`cargo bench -p workeros-benches`).

use workeros_core::{Subject, User};
use workeros_dsl::{Schema, ValueKind};

/// A 5-clause filter in the text form.
pub const FILTER_TEXT: &str = r#"owner_id = $user.id && status in ["draft", "published"] && views > 10 && title icontains "rust" && created_at > $now(-7 days)"#;

/// The same filter in the JSON form.
pub const FILTER_JSON: &str = r#"{"_and": [{"owner_id": {"_eq": "$user.id"}}, {"status": {"_in": ["draft", "published"]}}, {"views": {"_gt": 10}}, {"title": {"_icontains": "rust"}}, {"created_at": {"_gt": "$NOW(-7 days)"}}]}"#;

/// The schema the filter is checked against.
pub fn schema() -> Schema {
    Schema::of([
        ("owner_id", ValueKind::Text),
        ("status", ValueKind::Text),
        ("views", ValueKind::Integer),
        ("title", ValueKind::Text),
        ("created_at", ValueKind::Timestamp),
    ])
    .unwrap_or_default()
}

/// A signed-in subject.
pub fn subject() -> Subject {
    Subject::user(User::new("u1").with_roles(["editor"])).with_tenant("t1")
}

/// A row every clause of the filter accepts (so matching evaluates all five).
pub fn row_all_true() -> serde_json::Value {
    serde_json::json!({
        "owner_id": "u1", "status": "published", "views": 42,
        "title": "Learning Rust the hard way", "created_at": "2099-01-01T00:00:00.000000Z"
    })
}

/// A row the first clause rejects.
pub fn row_early_miss() -> serde_json::Value {
    serde_json::json!({
        "owner_id": "someone else", "status": "published", "views": 42,
        "title": "Learning Rust", "created_at": "2099-01-01T00:00:00.000000Z"
    })
}
