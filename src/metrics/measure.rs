//! The tower layer that counts and times every gRPC call.
//!
//! A call's status is known only when it ends. An error before any reply is a trailers-only reply, its status in
//! the headers; every other call, a streaming call's error included, carries its status in the trailers that end
//! the body. Counting at the headers would count a stream that fails half-way (an `Act` call ended by an
//! oversized statement, a download whose file went missing) as a success, hiding it from the alerts.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::Metrics;

/// Counts every call by method and final status, and times it until its response headers.
#[derive(Clone)]
pub struct Measure {
    pub metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for Measure {
    type Service = Measured<S>;
    fn layer(&self, inner: S) -> Measured<S> {
        Measured { inner, metrics: self.metrics.clone() }
    }
}

/// A service whose calls are counted and timed.
#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for Measured<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let call = Call { metrics: self.metrics.clone(), method: req.uri().path().to_owned() };
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            call.metrics.latency.with_label_values(&[call.method.as_str()]).observe(start.elapsed().as_secs_f64());
            match res {
                Ok(reply) => match reply.headers().get("grpc-status") {
                    Some(code) => {
                        call.count(code.to_str().unwrap_or("2"));
                        Ok(reply)
                    }
                    None => Ok(reply.map(|inner| tonic::body::Body::new(Counted { inner, call: Some(call) }))),
                },
                Err(e) => {
                    call.count("transport");
                    Err(e)
                }
            }
        })
    }
}

/// One call, counted once.
struct Call {
    metrics: Arc<Metrics>,
    method: String,
}

impl Call {
    fn count(self, code: &str) {
        self.metrics.requests.with_label_values(&[self.method.as_str(), code]).inc();
    }
}

/// A reply body that counts its call with the status in its trailers, or as CANCELLED when it is dropped before
/// them (the client went away, or its connection did).
struct Counted {
    inner: tonic::body::Body,
    call: Option<Call>,
}

impl Counted {
    fn count(&mut self, code: &str) {
        if let Some(call) = self.call.take() {
            call.count(code);
        }
    }
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(trailers) = f.trailers_ref() {
                    // Trailers without a status are a broken reply: a client reads them as UNKNOWN.
                    let code = trailers.get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("2").to_owned();
                    self.count(&code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.count("transport"),
            Poll::Ready(None) => self.count("2"),
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.count(&(tonic::Code::Cancelled as i32).to_string());
    }
}
