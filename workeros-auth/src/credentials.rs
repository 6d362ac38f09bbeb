//! Reading credentials from a request's headers, without HTTP types: the session cookie, then
//! `Authorization: Bearer`. The axum layer and a host on any other framework read them the same
//! way.

use crate::tokens::{self, API_KEY_PREFIX};
use crate::{Auth, AuthError};
use cookie::Cookie;
use subtle::ConstantTimeEq;
use workeros_core::Subject;

/// The value of the cookie `name` in any of the `Cookie` header values, if one carries it.
pub(crate) fn session_token<'h>(
    name: &str,
    cookie_headers: impl IntoIterator<Item = &'h str>,
) -> Option<&'h str> {
    cookie_headers
        .into_iter()
        .flat_map(|v| Cookie::split_parse(v).filter_map(Result::ok))
        .find(|c| c.name() == name)
        .map(|c| c.value_raw().unwrap_or_default())
}

/// The token of an `Authorization: Bearer <token>` value; `None` for another scheme or an
/// empty token.
pub(crate) fn bearer_of(authorization: &str) -> Option<&str> {
    authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|b| !b.is_empty())
}

impl Auth {
    /// Whether `bearer` is a credential this service issues: an API key (`pak_…`) or the
    /// bootstrap token. One it does not recognise is somebody else's (a host's own JWT), which
    /// the auth layer passes on to the host's resolver when it has one
    /// ([`AuthLayer::with_fallback`](crate::http::AuthLayer::with_fallback)).
    pub fn recognises_bearer(&self, bearer: &str) -> bool {
        if bearer.starts_with(API_KEY_PREFIX) {
            return true;
        }
        self.config().bootstrap_token.as_deref().is_some_and(|t| {
            // Digests of equal length compared whole, in constant time.
            let (given, want) = (tokens::digest(bearer), tokens::digest(t));
            bool::from(given.as_bytes().ct_eq(want.as_bytes()))
        })
    }

    /// The subject of a request from its raw header values, for hosts that are not axum: every
    /// `Cookie` header value, and the `Authorization` value.
    ///
    /// - `Ok(Some(subject))`: a valid session cookie (checked first) or a valid API key or
    ///   bootstrap token;
    /// - `Ok(None)`: no credential this service issues (no session cookie, no `Authorization`,
    ///   another scheme, or a bearer it does not [recognise](Self::recognises_bearer)): the
    ///   request is anonymous, or the host's own authentication's;
    /// - `Err(AuthError::Unauthorized)`: a credential of this service that is expired, revoked or
    ///   unknown. Answer 401 and clear the cookie; never treat it as anonymous.
    ///
    /// ```no_run
    /// # async fn demo(auth: workeros_auth::Auth) -> Result<(), workeros_auth::AuthError> {
    /// let cookie = Some("theme=dark; __Host-workeros_session=abc");
    /// let subject = auth
    ///     .authenticate_headers(cookie, Some("Bearer pak_…"))
    ///     .await?
    ///     .unwrap_or_default(); // anonymous
    /// # let _ = subject; Ok(()) }
    /// ```
    pub async fn authenticate_headers<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h str>,
        authorization: Option<&str>,
    ) -> Result<Option<Subject>, AuthError> {
        if let Some(token) = session_token(self.cookie_name(), cookie_headers) {
            return self.authenticate_session(token).await.map(Some);
        }
        match authorization.and_then(bearer_of) {
            Some(b) if self.recognises_bearer(b) => self.authenticate_bearer(b).await.map(Some),
            _ => Ok(None),
        }
    }
}
