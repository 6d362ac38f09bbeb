//! The built-in role names, which every crate shares: permissions name them, subjects carry them.

/// The role that bypasses every permission rule, in its tenant.
pub const ADMIN: &str = "admin";

/// The role every signed-in subject has, whatever else it has.
pub const AUTHENTICATED: &str = "authenticated";

/// The role of the anonymous subject.
pub const PUBLIC: &str = "public";

/// The built-in roles: [`ADMIN`], [`AUTHENTICATED`], [`PUBLIC`].
pub const BUILT_IN: [&str; 3] = [ADMIN, AUTHENTICATED, PUBLIC];
