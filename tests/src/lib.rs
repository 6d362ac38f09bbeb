//! Test support shared by the cross-crate integration tests: database backends (SQLite always,
//! PostgreSQL when `WORKEROS_TEST_PG` is set), and the DSL test table with one column of every
//! field type.
//!
//! PostgreSQL rules: without `WORKEROS_TEST_PG` the PostgreSQL half of a test skips, unless `CI`
//! is set, in which case it fails. Each test gets a fresh schema, dropped by [`Backend::close`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod adopt;
pub mod auth;
pub mod backend;
pub mod fixtures;
pub mod http;
pub mod mount;
pub mod sink;
pub mod sse;
pub mod stores;
pub mod strategies;
pub mod table;

pub use backend::{Backend, backends};
