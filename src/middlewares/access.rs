//! Applies `platform::auth` to every request: 401 JSON with `WWW-Authenticate: Bearer`
//! without a known token, 421 JSON for a foreign `Host` on an instance without tokens; the
//! token's fingerprint travels in the response's extensions for the request log. With a
//! rate limit set, a caller over it gets 429 with `Retry-After`.
//!
//! Before that, a request carrying the token of one of this instance's own outbound fetches
//! (url2text, webhooks) gets 508: the instance was pointed at itself, and answering would
//! let one request feed another without end.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tower::{Layer, Service};

use crate::platform::auth::{Access, Fingerprint, OnBehalfOf, Verdict};
use crate::platform::error::AppError;
use crate::platform::outbound::Outbound;
use crate::platform::rate_limit::RateLimit;

/// The scrape path, which takes `TOOLSHED_METRICS_TOKEN` when it is set.
pub const METRICS_PATH: &str = "/metrics";

/// Whether the request is for `/api/admin`, which takes admin tokens only.
fn is_admin(request: &Request) -> bool {
    let path = request.uri().path();
    path == "/api/admin" || path.starts_with("/api/admin/")
}

/// The requests that need no token: an orchestrator's probes.
fn is_probe(request: &Request) -> bool {
    request.method() == Method::GET
        && matches!(request.uri().path(), "/api/health" | "/api/health/ready")
}

/// Checks every request against `access`.
#[derive(Clone)]
pub struct AccessLayer {
    pub access: Access,
    pub outbound: Outbound,
    pub rate_limit: Option<Arc<RateLimit>>,
}

impl<S> Layer<S> for AccessLayer {
    type Service = AccessCheck<S>;

    fn layer(&self, inner: S) -> AccessCheck<S> {
        AccessCheck {
            inner,
            access: self.access.clone(),
            outbound: self.outbound.clone(),
            rate_limit: self.rate_limit.clone(),
        }
    }
}

/// The service of [`AccessLayer`].
#[derive(Clone)]
pub struct AccessCheck<S> {
    inner: S,
    access: Access,
    outbound: Outbound,
    rate_limit: Option<Arc<RateLimit>>,
}

/// 429 for a caller over the rate limit, naming it for the log.
fn rate_limited(
    limit: &RateLimit,
    wait: std::time::Duration,
    caller: Option<Fingerprint>,
) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over the rate limit of {} requests a minute; try again in {seconds} s",
            limit.per_minute()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    if let Some(fingerprint) = caller {
        response.extensions_mut().insert(fingerprint);
    }
    response
}

fn fetch_loop() -> Response {
    AppError::new(
        StatusCode::LOOP_DETECTED,
        "fetch_loop",
        "this request comes from this instance's own outbound fetch (url2text or a webhook \
         pointed at this instance)",
    )
    .into_response()
}

fn refused(verdict: Verdict, admin: bool) -> Response {
    match verdict {
        Verdict::ForeignHost => AppError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "foreign_host",
            "this instance has no API token and answers only to localhost, 127.0.0.1, [::1] \
             and TOOLSHED_ALLOWED_HOSTS",
        )
        .into_response(),
        Verdict::NoAdminTokens => AppError::new(
            StatusCode::FORBIDDEN,
            "no_admin_tokens",
            "the admin routes take an admin token, and this instance has none: set \
             TOOLSHED_ADMIN_TOKENS",
        )
        .into_response(),
        _ => {
            let mut response = AppError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                if admin {
                    "send an admin token (TOOLSHED_ADMIN_TOKENS) as Authorization: Bearer <token>"
                } else {
                    "send a valid API token as Authorization: Bearer <token> (or x-api-key: <token>)"
                },
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

impl<S> Service<Request> for AccessCheck<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Signed<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.outbound.is_own_fetch(request.headers()) {
            return Either::Left(ready(Ok(fetch_loop())));
        }
        if is_probe(&request) {
            return Either::Right(Signed {
                inner: self.inner.call(request),
                fingerprint: None,
            });
        }
        // A task's in-process request acts for whoever enqueued the task, and never reaches
        // an admin route (a token stored in a task would outlive its revocation); an admin
        // route takes an admin token.
        let verdict = match request.extensions().get::<OnBehalfOf>() {
            Some(_) if is_admin(&request) => Verdict::Unauthorized,
            None if is_admin(&request) => self.access.admin_verdict(request.headers()),
            Some(OnBehalfOf(caller)) => self.access.verdict_for(*caller),
            None if request.uri().path() == METRICS_PATH => self
                .access
                .metrics_verdict(request.headers())
                .unwrap_or_else(|| self.access.verdict(request.headers())),
            None => self.access.verdict(request.headers()),
        };
        let caller = match verdict {
            Verdict::Token(fingerprint) => Some(fingerprint),
            Verdict::Open => None,
            refusal => return Either::Left(ready(Ok(refused(refusal, is_admin(&request))))),
        };
        if let Some(limit) = &self.rate_limit
            && let Err(wait) = limit.check(caller)
        {
            return Either::Left(ready(Ok(rate_limited(limit, wait, caller))));
        }
        Either::Right(Signed {
            inner: self.inner.call(request),
            fingerprint: caller,
        })
    }
}

pin_project_lite::pin_project! {
    /// The answer, carrying the caller's token fingerprint for the request log.
    pub struct Signed<F> {
        #[pin]
        inner: F,
        fingerprint: Option<Fingerprint>,
    }
}

impl<F> Future for Signed<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        if let Some(fingerprint) = this.fingerprint.take() {
            response.extensions_mut().insert(fingerprint);
        }
        Poll::Ready(Ok(response))
    }
}
