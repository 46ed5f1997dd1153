//! Server side of request authentication: a tower layer in front of every service checks the token, and hands the
//! established [`Caller`] to the handlers in the request's extensions.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::{Request, Status};

use crate::app::App;
use crate::app::access::Caller;
use sha2::{Digest, Sha256};

use crate::auth::{HEADER, STREAMING_REQUESTS, decode_header};

/// Methods anyone may call without a token.
const PUBLIC: &[&str] = &[
    "/gongwen.v1.PublicService/",
    "/gongwen.v1.RegistryService/GetServerInfo",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
];

/// The caller of a request that passed the layer.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("this call needs a request token"))
}

/// Layer that authenticates requests against the app's registry.
#[derive(Clone)]
pub struct Authenticate {
    pub app: Arc<App>,
}

impl<S> tower::Layer<S> for Authenticate {
    type Service = Authenticated<S>;
    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated { inner, app: self.app.clone() }
    }
}

/// A service whose requests are authenticated first.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    app: Arc<App>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ResBody> tower::Service<http::Request<tonic::body::Body>> for Authenticated<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.clone();
        Box::pin(async move {
            let method = req.uri().path().to_owned();
            if PUBLIC.iter().any(|p| method.starts_with(p)) {
                return inner.call(req).await;
            }
            let (mut parts, body) = req.into_parts();
            let Some(token) = parts.headers.get(HEADER).and_then(|v| decode_header(v.as_bytes())) else {
                return Ok(
                    Status::unauthenticated(format!("{method} needs a signed request token in {HEADER}")).into_http()
                );
            };
            let limit = app.config().max_message_bytes;
            let (digest, buffered, streaming) = if STREAMING_REQUESTS.contains(&method.as_str()) {
                (vec![], None, Some(body))
            } else {
                match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
                    Ok(c) => {
                        let bytes = c.to_bytes();
                        (Sha256::digest(&bytes).to_vec(), Some(bytes), None)
                    }
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        return Ok(
                            Status::resource_exhausted(format!("the request is larger than {limit} bytes")).into_http()
                        );
                    }
                    Err(e) => return Ok(Status::invalid_argument(format!("unreadable request body: {e}")).into_http()),
                }
            };
            match app.authenticate(&token, &method, &digest).and_then(|c| app.charge(&c).map(|()| c)) {
                Ok(caller) => {
                    parts.extensions.insert(caller);
                }
                Err(e) => return Ok(Status::from(e).into_http()),
            }
            let body = match (buffered, streaming) {
                (Some(bytes), _) => tonic::body::Body::new(http_body_util::Full::new(bytes)),
                (None, Some(stream)) => stream,
                (None, None) => tonic::body::Body::empty(),
            };
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}
