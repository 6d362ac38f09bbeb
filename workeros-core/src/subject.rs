//! Who is asking.

use crate::roles;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The tenant of single-tenant hosts: where a subject without a tenant acts.
pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-000000000000";

/// The signed-in user part of a [`Subject`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct User {
    /// The user id (a number in JSON is accepted and kept as its decimal text).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The email, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Attributes the host put on the subject; `$user.<attr>` reads them.
    #[serde(default)]
    pub attrs: Map<String, Value>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number for the user id, found `{other}`"
        ))),
    }
}

impl User {
    /// A user with `id` and nothing else.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// The same user with `email`.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The same user with `roles`.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The same user with attribute `key` set to `value`.
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }
}

/// Who is asking: a user or anonymous, in a tenant or not. Every workeros call takes one; the
/// crates never read global state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Subject {
    /// The user; `None` is anonymous.
    #[serde(default)]
    pub user: Option<User>,
    /// The tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

impl Subject {
    /// The anonymous subject, in no tenant.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A signed-in subject.
    pub fn user(user: User) -> Self {
        Self {
            user: Some(user),
            tenant: None,
        }
    }

    /// The same subject in `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Whether nobody is signed in.
    pub fn is_anonymous(&self) -> bool {
        self.user.is_none()
    }

    /// Whether the subject has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    /// Whether the subject is an admin of its tenant (has [`roles::ADMIN`]).
    pub fn is_admin(&self) -> bool {
        self.has_role(roles::ADMIN)
    }

    /// The tenant the subject acts in: its own, or [`DEFAULT_TENANT`].
    pub fn tenant_id(&self) -> &str {
        self.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_json() {
        let s: Subject = serde_json::from_str(
            r#"{"user":{"id":7,"email":"a@b.c","roles":["x"],"attrs":{"team":"t"}},"tenant":"t1"}"#,
        )
        .unwrap();
        let u = s.user.as_ref().unwrap();
        assert_eq!(u.id, "7");
        assert!(s.has_role("x"));
        assert_eq!(u.attrs["team"], "t");
        let anon: Subject = serde_json::from_str("{}").unwrap();
        assert!(anon.is_anonymous());
        assert_eq!(anon.tenant_id(), DEFAULT_TENANT);
        assert_eq!(s.tenant_id(), "t1");
        assert!(!s.is_admin());
        assert!(Subject::user(User::new("a").with_roles([roles::ADMIN])).is_admin());
    }
}

/// The client's address as the host's auth layer determined it (the connection's, or the last
/// `X-Forwarded-For` entry behind a proxy the host trusts), set as a request extension
/// (`workeros-auth`'s `AuthLayer` sets it); `None` when unknown. Per-address limits (sign-in
/// attempts, realtime streams) read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);
