//! Bring your own identity: a host with its own authentication (JWTs, its own sessions, an API
//! gateway's headers) turns a request into the [`Subject`] workeros judges, without
//! workeros-auth.
//!
//! ```
//! use axum::http::{StatusCode, request::Parts};
//! use workeros_core::{Subject, User};
//! use workeros_store::http::IdentifyLayer;
//!
//! // A gateway in front of the service put the user in a header it vouches for.
//! fn from_gateway(parts: &Parts) -> Result<Option<Subject>, StatusCode> {
//!     let Some(v) = parts.headers.get("x-user-id") else {
//!         return Ok(None); // anonymous
//!     };
//!     let id = v.to_str().map_err(|_| StatusCode::UNAUTHORIZED)?;
//!     Ok(Some(Subject::user(User::new(id).with_roles(["authenticated"]))))
//! }
//!
//! fn app(store: workeros_store::Store) -> axum::Router {
//!     axum::Router::new()
//!         .nest("/cms", workeros_store::http::router(store))
//!         .layer(IdentifyLayer::new(from_gateway))
//! }
//! ```

use axum::extract::Request;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use workeros_core::Subject;

/// A boxed, sendable future (what [`Identify::identify`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a request into a [`Subject`]: the host's own authentication, for [`IdentifyLayer`] (or
/// for workeros-auth's layer, as the resolver of credentials it does not issue).
///
/// - `Ok(Some(subject))`: the request is `subject`;
/// - `Ok(None)`: the request carries no credential this resolver knows;
/// - `Err(response)`: the credential is the resolver's and is not valid; `response` (a 401, say)
///   is the answer, and the request goes no further.
///
/// A plain function or closure `Fn(&Parts) -> Result<Option<Subject>, E>`, with any
/// `E: IntoResponse` (a `StatusCode`, a `(StatusCode, Json<_>)`), is a resolver (most token checks
/// need no I/O); implement the trait for one that awaits (a session lookup).
pub trait Identify: Send + Sync + 'static {
    /// The subject of the request whose head is `parts`.
    fn identify<'a>(&'a self, parts: &'a Parts)
    -> BoxFuture<'a, Result<Option<Subject>, Response>>;
}

impl<F, E> Identify for F
where
    F: Fn(&Parts) -> Result<Option<Subject>, E> + Send + Sync + 'static,
    E: IntoResponse,
{
    fn identify<'a>(
        &'a self,
        parts: &'a Parts,
    ) -> BoxFuture<'a, Result<Option<Subject>, Response>> {
        let out = self(parts).map_err(IntoResponse::into_response);
        Box::pin(std::future::ready(out))
    }
}

/// A shared resolver, as the layers hold it.
pub type Identifier = Arc<dyn Identify>;

/// The tower layer that sets every request's [`Subject`] extension from an [`Identify`]
/// resolver: what the [`Caller`](super::Caller) extractor of every workeros route reads. A
/// request the resolver does not know goes on as anonymous; one it refuses gets the resolver's
/// response. A subject an outer layer already set is kept.
#[derive(Clone)]
pub struct IdentifyLayer {
    identify: Identifier,
}

impl std::fmt::Debug for IdentifyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentifyLayer").finish_non_exhaustive()
    }
}

impl IdentifyLayer {
    /// A layer resolving subjects with `identify`.
    pub fn new(identify: impl Identify) -> Self {
        Self {
            identify: Arc::new(identify),
        }
    }

    /// A layer resolving subjects with a shared resolver.
    pub fn shared(identify: Identifier) -> Self {
        Self { identify }
    }
}

impl<S> tower::Layer<S> for IdentifyLayer {
    type Service = IdentifyService<S>;

    fn layer(&self, inner: S) -> IdentifyService<S> {
        IdentifyService {
            identify: self.identify.clone(),
            inner,
        }
    }
}

/// The service [`IdentifyLayer`] wraps around the host's.
#[derive(Clone)]
pub struct IdentifyService<S> {
    identify: Identifier,
    inner: S,
}

impl<S: std::fmt::Debug> std::fmt::Debug for IdentifyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentifyService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> tower::Service<Request> for IdentifyService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let identify = self.identify.clone();
        Box::pin(async move {
            if req.extensions().get::<Subject>().is_some() {
                return inner.call(req).await;
            }
            let (mut parts, body) = req.into_parts();
            match identify.identify(&parts).await {
                Ok(Some(subject)) => {
                    parts.extensions.insert(subject);
                }
                Ok(None) => {}
                Err(refused) => return Ok(refused),
            }
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}
