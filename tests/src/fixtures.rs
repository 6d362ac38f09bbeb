//! The subjects tests act as, so every test says who it is the same way: the default tenant's
//! admin (or another tenant's), a signed-in user, a user with one role.

use workeros_core::{Subject, User, roles};

/// The user id of [`admin`].
pub const ADMIN_ID: &str = "admin-1";

/// An admin of the default tenant.
pub fn admin() -> Subject {
    Subject::user(User::new(ADMIN_ID).with_roles([roles::ADMIN]))
}

/// An admin of `tenant`.
pub fn admin_of(tenant: &str) -> Subject {
    admin().with_tenant(tenant)
}

/// A signed-in user without roles of its own (the `authenticated` role only).
pub fn user(id: &str) -> Subject {
    Subject::user(User::new(id))
}

/// A signed-in user with `role`.
pub fn with_role(id: &str, role: &str) -> Subject {
    Subject::user(User::new(id).with_roles([role]))
}
