//! Request authentication shared by client and server: the caller signs a short token naming itself, the method,
//! the time, a nonce and the digest of the request body; the server checks it (see `grpc::auth`). The client side
//! is a tower layer around a channel, so every generated client signs its calls without knowing it.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::Utc;
use http_body_util::BodyExt;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::pb;
use crate::signing::Signer;

/// The metadata entry that carries the token.
pub const HEADER: &str = "gongwen-auth-bin";
/// Payload type of a signed token.
pub const TOKEN_TYPE: &str = "gongwen.v1.RequestToken";
/// Methods whose request body streams: their token carries no body digest (uploads are content-addressed, and
/// each statement on `Act` carries its own signature).
pub const STREAMING_REQUESTS: &[&str] =
    &["/gongwen.v1.DocumentService/UploadAttachment", "/gongwen.v1.DeliveryService/Act"];

/// Makes the token for one request.
pub fn make_token(signer: &Signer, unit: &str, method: &str, body_sha256: Vec<u8>) -> Result<pb::AuthToken, String> {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).map_err(|e| e.to_string())?;
    let now = Utc::now();
    let token = pb::RequestToken {
        unit_id: unit.to_owned(),
        method: method.to_owned(),
        time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        nonce: nonce.to_vec(),
        body_sha256,
    }
    .encode_to_vec();
    let signature = signer.sign_raw(TOKEN_TYPE, &token);
    Ok(pb::AuthToken { token, key_id: signer.key_id.clone(), signature })
}

/// Buffers a unary body to hash it; streaming bodies pass through untouched with an empty digest.
pub async fn digest_body<B>(method: &str, body: B) -> Result<(Vec<u8>, Option<Bytes>, Option<B>), B::Error>
where
    B: http_body::Body<Data = Bytes>,
{
    if STREAMING_REQUESTS.contains(&method) {
        return Ok((vec![], None, Some(body)));
    }
    let bytes = body.collect().await?.to_bytes();
    Ok((Sha256::digest(&bytes).to_vec(), Some(bytes), None))
}

/// Tower layer that signs every outgoing request as `unit` with `signer`.
#[derive(Clone)]
pub struct SignRequests {
    signer: Signer,
    unit: String,
}

impl SignRequests {
    /// Signs as `unit` (a unit id, or "operator") with its key.
    pub fn new(unit: impl Into<String>, signer: Signer) -> SignRequests {
        SignRequests { signer, unit: unit.into() }
    }
}

impl<S> tower::Layer<S> for SignRequests {
    type Service = Signed<S>;
    fn layer(&self, inner: S) -> Signed<S> {
        Signed { inner, auth: self.clone() }
    }
}

/// A client service that adds a signed token to each request.
#[derive(Clone)]
pub struct Signed<S> {
    inner: S,
    auth: SignRequests,
}

/// The error type of the signing service: whatever the inner channel says, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for Signed<S>
where
    S: tower::Service<http::Request<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response, BoxError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        // The ready service goes into the future; a fresh clone waits for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let method = parts.uri.path().to_owned();
            let (digest, buffered, streaming) =
                digest_body(&method, body).await.map_err(|e| BoxError::from(e.to_string()))?;
            let token = make_token(&auth.signer, &auth.unit, &method, digest).map_err(BoxError::from)?;
            let value = http::HeaderValue::from_maybe_shared(Bytes::from(base64_unpadded(&token.encode_to_vec())))
                .map_err(|e| BoxError::from(e.to_string()))?;
            parts.headers.insert(HEADER, value);
            let body = match (buffered, streaming) {
                (Some(bytes), _) => tonic::body::Body::new(http_body_util::Full::new(bytes)),
                (None, Some(stream)) => stream,
                (None, None) => tonic::body::Body::empty(),
            };
            inner.call(http::Request::from_parts(parts, body)).await.map_err(Into::into)
        })
    }
}

/// gRPC binary metadata is standard base64 without padding.
fn base64_unpadded(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Decodes a `-bin` metadata value (padded or not).
pub fn decode_header(value: &[u8]) -> Option<pb::AuthToken> {
    use base64::Engine;
    let text = std::str::from_utf8(value).ok()?.trim_end_matches('=');
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(text).ok()?;
    pb::AuthToken::decode(raw.as_slice()).ok()
}
