//! The tower layer that counts and times every gRPC call.
//!
//! A call's status is known only when it ends. An error before any reply is a trailers-only reply, its status in
//! the headers; every other call, a streaming call's error included, carries its status in the trailers that end
//! the body. Counting at the headers would count a stream that fails half-way (an `Act` call ended by an
//! oversized statement, a download whose file went missing) as a success, hiding it from the alerts. A call that
//! ends with neither (its deadline passed, its client reset it or went away) is counted when it is dropped.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
        let start = Instant::now();
        let deadline = req.headers().get("grpc-timeout").and_then(|v| timeout(v.to_str().ok()?)).map(|t| start + t);
        let mut call = Call {
            metrics: self.metrics.clone(),
            method: method_label(req.uri().path()),
            start,
            deadline,
            timed: false,
            counted: false,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            call.time();
            match res {
                Ok(reply) => match reply.headers().get("grpc-status") {
                    Some(code) => {
                        call.count(code.to_str().unwrap_or("2"));
                        Ok(reply)
                    }
                    None => Ok(reply.map(|inner| tonic::body::Body::new(Counted { inner, call }))),
                },
                Err(e) => {
                    call.count("transport");
                    Err(e)
                }
            }
        })
    }
}

/// The method as a label: one of the server's methods, else "unknown". Paths are the caller's to choose, and a
/// label for each would let any client grow the metrics without bound.
fn method_label(path: &str) -> &'static str {
    crate::grpc::methods::served(path).unwrap_or("unknown")
}

/// A `grpc-timeout` header's duration ("100m", "5S", …).
fn timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// One call, counted once: with the status it ended with, or, dropped before it had one, as DEADLINE_EXCEEDED
/// once its deadline has passed (tonic, which drops it, tells the client CANCELLED, "Timeout expired": the metric
/// names the cause) and as CANCELLED otherwise (its client reset it or went away, or the server cut it
/// off at the end of a stop's grace).
struct Call {
    metrics: Arc<Metrics>,
    method: &'static str,
    start: Instant,
    deadline: Option<Instant>,
    timed: bool,
    counted: bool,
}

impl Call {
    fn time(&mut self) {
        if !std::mem::replace(&mut self.timed, true) {
            self.metrics.latency.with_label_values(&[self.method]).observe(self.start.elapsed().as_secs_f64());
        }
    }

    fn count(&mut self, code: &str) {
        if !std::mem::replace(&mut self.counted, true) {
            self.metrics.requests.with_label_values(&[self.method, code]).inc();
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.counted {
            return;
        }
        self.time();
        let code = match self.deadline {
            Some(d) if Instant::now() >= d => tonic::Code::DeadlineExceeded,
            _ => tonic::Code::Cancelled,
        };
        self.count(&(code as i32).to_string());
    }
}

/// A reply body that counts its call with the status in its trailers (or, dropped before them, as [`Call`] says).
struct Counted {
    inner: tonic::body::Body,
    call: Call,
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
                    self.call.count(&code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.call.count("transport"),
            Poll::Ready(None) => self.call.count("2"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        assert_eq!(timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "m", "5x", "-1S", "1.5S", "5é"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_server_s_methods_are_labels() {
        assert_eq!(method_label("/gongwen.v1.DeliveryService/Act"), "/gongwen.v1.DeliveryService/Act");
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "/grpc.health.v1.Health/Check");
        let alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
        assert_eq!(method_label(alpha), alpha, "both reflection services are labelled");
        assert_eq!(method_label("/gongwen.v1.DeliveryService/NoSuchMethod"), "unknown");
        assert_eq!(method_label("/x/y?z"), "unknown");
    }
}
