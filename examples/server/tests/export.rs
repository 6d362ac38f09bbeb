//! `example-server export-migrations`: every component's versions written as SQL files, in the
//! order to apply them, for the dialect and namespace asked for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use workeros_dsl::Dialect;
use workeros_store::{Names, Namespace};

#[test]
fn writes_every_version_of_every_component() {
    let dir = std::env::temp_dir().join(format!("workeros-export-{}", std::process::id()));
    let names = Names::new(Dialect::Postgres, Namespace::new("cms").unwrap(), None);
    let files = example_server::write_migrations(&dir, &names).unwrap();
    let shown: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let want: usize = example_server::COMPONENTS
        .iter()
        .map(|c| c.latest() as usize)
        .sum();
    assert_eq!(shown.len(), want);
    assert_eq!(shown[0], "workeros_store_v0001.sql");
    assert!(
        shown.contains(&"workeros_auth_v0003.sql".to_owned()),
        "{shown:?}"
    );
    let auth = std::fs::read_to_string(dir.join("workeros_auth_v0001.sql")).unwrap();
    assert!(
        auth.contains(r#"CREATE TABLE IF NOT EXISTS "cms"."users""#),
        "{auth}"
    );
    assert!(auth.contains(r#"INSERT INTO "cms"."migrations""#), "{auth}");
    std::fs::remove_dir_all(&dir).unwrap();
}
