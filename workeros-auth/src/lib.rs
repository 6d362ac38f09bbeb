//! workeros-auth: identity.
//!
//! **Status: skeleton.** This crate will hold (see `spec/auth.md` and issue 4): users with
//! Argon2id passwords, sessions and API keys stored as hashes, roles, organizations, invitations,
//! external role sync and realtime tickets; it produces the `workeros_core::Subject` that every
//! other crate takes. It sits above `workeros-store`.
