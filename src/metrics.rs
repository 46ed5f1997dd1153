//! Prometheus metrics on a separate plain-HTTP port (`GET /metrics`): requests by method and status, latency
//! histograms, statements on `Act` calls, events appended, log size, store size, flushes and the transactions they
//! carried, whether the store has failed, deferred keys, open streams and the process's start time.
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::app::App;

mod measure;
pub use measure::Measure;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    events: IntGauge,
    store_bytes: IntGauge,
    deferred_keys: IntGauge,
    flushes: IntCounter,
    flushed_transactions: IntCounter,
    store_failed: IntGauge,
    trace_cache_bytes: IntGauge,
    trace_cache_visits: IntCounterVec,
    act_statements: IntCounterVec,
    open_streams: IntGauge,
    tree_walks_waiting: IntGauge,
    tree_walks_abandoned: IntCounter,
    /// Held while counters are brought up to the app's totals: two scrapes at once would both add the difference.
    catching_up: std::sync::Mutex<()>,
}

/// Registers `metric` with `registry` and hands it back: made and registered in one step, none is left out.
fn add<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    add(registry, IntGauge::new(name, help)?)
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    add(registry, IntCounter::new(name, help)?)
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = add(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "gongwen_requests_total",
                    "gRPC calls by method and the status code they ended with (a streaming call counts when it ends; 1, CANCELLED, when its client went away first)",
                ),
                &["method", "code"],
            )?,
        )?;
        let latency = add(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("gongwen_request_seconds", "gRPC request latency until the response headers")
                    .buckets(vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]),
                &["method"],
            )?,
        )?;
        let events = gauge(&registry, "gongwen_log_events", "events in the log (its Merkle tree size)")?;
        let store_bytes = gauge(&registry, "gongwen_store_bytes", "bytes the store takes on disk")?;
        let deferred_keys = gauge(
            &registry,
            "gongwen_store_deferred_keys",
            "keys of acknowledged large commits not yet moved into the store's tree (readable already)",
        )?;
        let flushes = counter(
            &registry,
            "gongwen_store_flushes_total",
            "group-commit flushes of the store that made at least one write durable; each write's reply waits for one",
        )?;
        let flushed_transactions = counter(
            &registry,
            "gongwen_store_flushed_transactions_total",
            "write transactions made durable by those flushes: divided by the flushes, the size of a commit group",
        )?;
        let store_failed = gauge(
            &registry,
            "gongwen_store_failed",
            "1 once a flush has failed and the store can no longer make writes durable (until a restart), else 0",
        )?;
        let trace_cache_bytes = gauge(
            &registry,
            "gongwen_trace_cache_bytes",
            "bytes of documents' deliveries and forwards kept in memory for traces and status matrices",
        )?;
        let trace_cache_visits = add(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "gongwen_trace_cache_visits_total",
                    "reads of a document's deliveries or forwards, by result",
                ),
                &["result"],
            )?,
        )?;
        let act_statements = add(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "gongwen_act_statements_total",
                    "statements sent on Act calls, by payload type and the gRPC status code of each one's result",
                ),
                &["type", "code"],
            )?,
        )?;
        let open_streams = gauge(&registry, "gongwen_open_streams", "streaming calls open now")?;
        let tree_walks_waiting = gauge(
            &registry,
            "gongwen_tree_walks_waiting",
            "traces, status matrices, not-acted and overdue lists and audit bundles waiting for a walk permit \
             (max_tree_walks)",
        )?;
        let tree_walks_abandoned = counter(
            &registry,
            "gongwen_tree_walks_abandoned_total",
            "walks (traces, status matrices, lists, audit bundles) stopped before their end because their caller had \
             gone: a client that gave up, or a deadline that passed",
        )?;
        // Set once: a series whose value keeps changing is a server that keeps restarting (a store that fails
        // again at every start exits every time, and no other metric outlives the process to show it).
        let start_time =
            gauge(&registry, "gongwen_start_time_seconds", "when this server process started, in Unix seconds")?;
        start_time.set(chrono::Utc::now().timestamp());
        Ok(Metrics {
            registry,
            requests,
            latency,
            events,
            store_bytes,
            deferred_keys,
            flushes,
            flushed_transactions,
            store_failed,
            trace_cache_bytes,
            trace_cache_visits,
            act_statements,
            open_streams,
            tree_walks_waiting,
            tree_walks_abandoned,
            catching_up: std::sync::Mutex::new(()),
        })
    }

    /// The text exposition, with the gauges read from the app now.
    pub async fn render(&self, app: &App) -> String {
        if let Ok((events, bytes)) = app.sizes().await {
            self.events.set(i64::try_from(events).unwrap_or(i64::MAX));
            self.store_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        self.deferred_keys.set(i64::try_from(app.deferred_keys()).unwrap_or(i64::MAX));
        self.store_failed.set(i64::from(app.store_failure().is_some()));
        let _catching_up = self.catching_up.lock().unwrap_or_else(|p| p.into_inner());
        let flushed = app.store_flushes();
        catch_up(&self.flushes, flushed.flushes);
        catch_up(&self.flushed_transactions, flushed.transactions);
        if let Some(c) = app.trace_cache() {
            self.trace_cache_bytes.set(i64::try_from(c.bytes).unwrap_or(i64::MAX));
            // The counters live in the cache; this brings the exported ones up to them.
            for (result, total) in [("hit", c.hits), ("miss", c.misses)] {
                catch_up(&self.trace_cache_visits.with_label_values(&[result]), total);
            }
        }
        for ((kind, code), total) in app.statements.counts() {
            catch_up(&self.act_statements.with_label_values(&[kind, code.to_string().as_str()]), total);
        }
        self.open_streams.set(i64::try_from(app.open_streams()).unwrap_or(0));
        self.tree_walks_waiting.set(i64::try_from(app.tree_walks_waiting()).unwrap_or(0));
        catch_up(&self.tree_walks_abandoned, app.tree_walks_abandoned());
        let mut out = vec![];
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Brings an exported counter up to a total the app keeps (callers hold `catching_up`).
fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// Serves `GET /metrics` on `addr` until the process ends; returns the bound address.
/// The endpoint holds the app weakly: it must not keep the store open after the server has stopped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, app: Weak<App>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (metrics, app) = (metrics.clone(), app.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if request.starts_with("GET /metrics ") {
                    match app.upgrade() {
                        Some(app) => ("200 OK", metrics.render(&app).await),
                        None => ("503 Service Unavailable", "the server has stopped\n".to_owned()),
                    }
                } else {
                    ("404 Not Found", "only GET /metrics is served here\n".to_owned())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(bound)
}
