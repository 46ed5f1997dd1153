//! Server side of request authentication: a tower layer in front of every service checks the token, and hands the
//! established [`Caller`] to the handlers in the request's extensions. It is also where every call meets the
//! limits that need no handler: the message size (all calls), the request rate (per caller, or per address for
//! calls without a token, and for calls that fail to authenticate) and the stream cap for client-streaming uploads
//! and for the public streams (health watches, reflection), over all callers and per caller.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::{Request, Status};

use crate::app::App;
use crate::app::access::Caller;
use crate::app::limits::{StreamOwner, StreamPermit};
use sha2::{Digest, Sha256};

use crate::auth::{HEADER, STREAMING_REQUESTS, decode_header};
use crate::grpc::limit::{MessageLimit, too_large};

/// Methods anyone may call without a token.
const PUBLIC: &[&str] = &[
    "/gongwen.v1.PublicService/",
    "/gongwen.v1.RegistryService/GetServerInfo",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
];

/// Public calls whose replies are streams that may stay open for long: they count against the stream cap like
/// ours, for as long as their reply is open.
const PUBLIC_STREAMS: &[&str] =
    &["/grpc.health.v1.Health/Watch", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"];

/// A reply body that holds a stream permit until it is dropped (the stream ended or the client went away). With
/// `stop`, it ends with UNAVAILABLE when the server begins to stop: the health watches and reflection streams are
/// tonic's, and would otherwise keep a stopping server waiting on their clients.
struct PermitBody {
    inner: tonic::body::Body,
    _permit: StreamPermit,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
    ended: bool,
}

impl PermitBody {
    fn new(inner: tonic::body::Body, permit: StreamPermit) -> PermitBody {
        PermitBody { inner, _permit: permit, stop: None, ended: false }
    }
}

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        // Only between frames: tonic encodes each of these small messages whole into one.
        if frame.is_pending() && self.stop.as_mut().is_some_and(|stop| stop.as_mut().poll(cx).is_ready()) {
            self.ended = true;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from(tonic::Code::Unavailable as i32));
            trailers.insert("grpc-message", http::HeaderValue::from_static("the server is stopping; call again"));
            return Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))));
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.ended { http_body::SizeHint::with_exact(0) } else { self.inner.size_hint() }
    }
}

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

impl<S> tower::Service<http::Request<tonic::body::Body>> for Authenticated<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
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
            let (mut parts, body) = req.into_parts();
            let limit = app.config().max_message_bytes;
            let body = MessageLimit::new(body, limit);
            if PUBLIC.iter().any(|p| method.starts_with(p)) {
                // No token names these callers, so their budget is their address's.
                let from = peer(&parts.extensions);
                if let Err(e) = app.charge_anonymous(from.clone()) {
                    return Ok(Status::from(e).into_http());
                }
                let permit = if PUBLIC_STREAMS.contains(&method.as_str()) {
                    match app.stream_permit(StreamOwner::Anonymous(from.clone())) {
                        Ok(p) => Some(p),
                        Err(e) => return Ok(Status::from(e).into_http()),
                    }
                } else {
                    None
                };
                let reply = inner.call(http::Request::from_parts(parts, tonic::body::Body::new(body))).await?;
                return Ok(match permit {
                    Some(permit) => reply.map(|inner| {
                        let stop = Some(Box::pin(app.stopping()) as Pin<Box<dyn Future<Output = ()> + Send + Sync>>);
                        tonic::body::Body::new(PermitBody { stop, ..PermitBody::new(inner, permit) })
                    }),
                    None => reply,
                });
            }
            let from = peer(&parts.extensions);
            if let Err(e) = app.check_failures(&from) {
                return Ok(Status::from(e).into_http());
            }
            let Some(token) = parts.headers.get(HEADER).and_then(|v| decode_header(v.as_bytes())) else {
                app.charge_failure(&from);
                return Ok(
                    Status::unauthenticated(format!("{method} needs a signed request token in {HEADER}")).into_http()
                );
            };
            let streaming = STREAMING_REQUESTS.contains(&method.as_str());
            let (digest, body) = if streaming {
                (vec![], tonic::body::Body::new(body))
            } else {
                // One message and its prefix: more is not a unary request, and must not be buffered.
                let total = limit.saturating_add(5);
                match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, total)).await {
                    Ok(c) => {
                        let bytes = c.to_bytes();
                        (Sha256::digest(&bytes).to_vec(), tonic::body::Body::new(http_body_util::Full::new(bytes)))
                    }
                    Err(e) => {
                        let status = match e.downcast::<Status>() {
                            Ok(s) => *s,
                            Err(e) if e.is::<http_body_util::LengthLimitError>() => too_large(None, limit),
                            Err(e) => Status::invalid_argument(format!("unreadable request body: {e}")),
                        };
                        return Ok(status.into_http());
                    }
                }
            };
            let caller = match app.authenticate(&token, &method, &digest).await {
                Ok(caller) => caller,
                Err(e) => {
                    app.charge_failure(&from);
                    return Ok(Status::from(e).into_http());
                }
            };
            if let Err(e) = app.charge(&caller) {
                return Ok(Status::from(e).into_http());
            }
            if !streaming {
                parts.extensions.insert(caller);
                return inner.call(http::Request::from_parts(parts, body)).await;
            }
            // A streaming call holds its permit until its reply ends: an upload's handler reads the whole stream
            // before it replies, but `Act` reads the requests while its reply streams.
            let permit = match app.stream_permit(StreamOwner::of(&caller)) {
                Ok(p) => p,
                Err(e) => return Ok(Status::from(e).into_http()),
            };
            parts.extensions.insert(caller);
            let reply = inner.call(http::Request::from_parts(parts, body)).await?;
            Ok(reply.map(|inner| tonic::body::Body::new(PermitBody::new(inner, permit))))
        })
    }
}

/// The address a caller without a token is counted by: its IP, or for IPv6 its /64 (one host's usual share), so
/// one machine cannot spread a flood over many addresses.
pub(crate) fn peer(extensions: &http::Extensions) -> String {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let addr = extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|t| t.get_ref().remote_addr()));
    match addr.map(|a| a.ip().to_canonical()) {
        Some(std::net::IpAddr::V4(ip)) => ip.to_string(),
        Some(std::net::IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "an unknown address".to_owned(),
    }
}
