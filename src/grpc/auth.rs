//! Server side of request authentication: a tower layer in front of every service checks the token, and hands the
//! established [`Caller`] to the handlers in the request's extensions. It is also where every call meets the
//! limits that need no handler: the message size (all calls), the request rate (per caller, or per address for
//! calls without a token, and for calls that fail to authenticate) and the stream caps, over all callers and per
//! caller, for every call that streams (which the contract says: [`methods`]). It also ends the open-ended replies
//! when the server begins to stop.
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
use crate::grpc::methods;

/// Methods anyone may call without a token.
const PUBLIC: &[&str] = &[
    "/gongwen.v1.PublicService/",
    "/gongwen.v1.RegistryService/GetServerInfo",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// What an open-ended call ends with when the server stops, as UNAVAILABLE, which clients retry (on another server,
/// or on this one once it is back).
pub(super) const STOPPING: &str = "the server is stopping; call again to go on (everything answered so far is kept)";

/// A reply body that holds a stream permit until it is dropped (the stream ended or the client went away). With
/// `stop`, it ends with UNAVAILABLE when the server begins to stop, between two messages (see
/// [`methods::ENDS_AT_STOP`]).
struct PermitBody {
    inner: tonic::body::Body,
    _permit: StreamPermit,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
    ended: bool,
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
            trailers.insert("grpc-message", http::HeaderValue::from_static(STOPPING));
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
            let (owner, body) = match admit(&app, &method, &mut parts, body).await {
                Ok(admitted) => admitted,
                Err(status) => return Ok(status.into_http()),
            };
            if !methods::streams(&method) {
                return inner.call(http::Request::from_parts(parts, body)).await;
            }
            // A streaming call holds its permit from before its handler runs until its reply ends: an upload's
            // handler reads the whole stream before it replies, `Act` reads requests while its reply streams, and
            // a backup is taken before its first chunk.
            let permit = match app.stream_permit(owner) {
                Ok(p) => p,
                Err(e) => return Ok(Status::from(e).into_http()),
            };
            let reply = inner.call(http::Request::from_parts(parts, body)).await?;
            let stop = methods::ENDS_AT_STOP
                .contains(&method.as_str())
                .then(|| Box::pin(app.stopping()) as Pin<Box<dyn Future<Output = ()> + Send + Sync>>);
            Ok(reply.map(|inner| tonic::body::Body::new(PermitBody { inner, _permit: permit, stop, ended: false })))
        })
    }
}

/// Lets a request in, or says why not: the message limit, then for public methods the address's request rate, for
/// the others the token (whose caller goes into the request's extensions) and the caller's rate. Returns whose
/// streams the call counts among, and the body to hand on (a unary one read whole, to check its digest).
async fn admit(
    app: &App,
    method: &str,
    parts: &mut http::request::Parts,
    body: tonic::body::Body,
) -> Result<(StreamOwner, tonic::body::Body), Status> {
    let limit = app.config().max_message_bytes;
    let body = MessageLimit::new(body, limit);
    let from = peer(&parts.extensions);
    if PUBLIC.iter().any(|p| method.starts_with(p)) {
        // No token names these callers, so their budget is their address's.
        app.charge_anonymous(from.clone())?;
        return Ok((StreamOwner::Anonymous(from), tonic::body::Body::new(body)));
    }
    app.check_failures(&from)?;
    let Some(token) = parts.headers.get(HEADER).and_then(|v| decode_header(v.as_bytes())) else {
        app.charge_failure(&from);
        return Err(Status::unauthenticated(format!("{method} needs a signed request token in {HEADER}")));
    };
    let (digest, body) = if STREAMING_REQUESTS.contains(&method) {
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
                return Err(match e.downcast::<Status>() {
                    Ok(s) => *s,
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => too_large(None, limit),
                    Err(e) => Status::invalid_argument(format!("unreadable request body: {e}")),
                });
            }
        }
    };
    let caller = app.authenticate(&token, method, &digest).await.inspect_err(|_| app.charge_failure(&from))?;
    app.charge(&caller)?;
    let owner = StreamOwner::of(&caller);
    parts.extensions.insert(caller);
    Ok((owner, body))
}

/// The address a caller without a token is counted by: its IP, or for IPv6 its /64 (one host's usual share), so
/// one machine cannot spread a flood over many addresses.
fn peer(extensions: &http::Extensions) -> String {
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
