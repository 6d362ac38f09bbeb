//! workeros-adopt: wrap existing tables as collections.
//!
//! **Status: skeleton.** This crate will hold (see `spec/adopt.md` and issue 5): introspection of
//! existing PostgreSQL and SQLite tables (columns, keys, foreign keys), aliasing of physical
//! columns to logical field names, and the adopt wizard's API, writing collection metadata
//! without DDL. It sits above `workeros-store`.
