//! The PostgreSQL side of the side-by-side run: a small gRPC service that implements gongwen's own
//! `DeliveryService.Acknowledge` (same proto, same client code, same two Ed25519 signatures per call) by checking
//! the request token and the signed statement, then INSERTing one row per acknowledgment and replying only after
//! the COMMIT (autocommit, with PostgreSQL's default `synchronous_commit = on` and `fsync = on`).
//!
//! The same service with no database is the *floor* run: every check and signature of an acknowledgment over the
//! same gRPC path, nothing stored. What it costs per acknowledgment bounds any storage design from below.
//!
//! What it leaves out, and gongwen does: the delivery state machine and its read of the delivery and document
//! header, the Merkle log entry and nodes, inbox and index keys. What it keeps: gRPC over loopback with
//! TCP_NODELAY, token checks (method, time, nonce, body digest, signature), statement signature and actor checks,
//! the request-id uniqueness (primary key), and a durable write before the reply.
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use gongwen::domain::model::{KeyAlgorithm, SealKey};
use gongwen::domain::seal;
use gongwen::pb;
use gongwen::pb::delivery_service_server::{DeliveryService, DeliveryServiceServer};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_postgres::{Client, NoTls, Statement};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::{Calls, Rate, ingest, unit_id, unit_key};

const METHOD: &str = "/gongwen.v1.DeliveryService/Acknowledge";
const ACT_METHOD: &str = "/gongwen.v1.DeliveryService/Act";
const INSERT: &str = "INSERT INTO gongwen_acks (unit_id, request_id, document_id, envelope, acknowledged_at) VALUES ($1, $2, $3, $4, now())";

/// The database and the units' public keys (the stand-in's registry).
pub struct Postgres {
    url: String,
    keys: Arc<HashMap<String, (String, SealKey, seal::PublicKey)>>,
}

/// A fixed pool: one connection per concurrent request at most.
struct Pool {
    conns: Vec<(Client, Statement)>,
    free: tokio::sync::Mutex<Vec<usize>>,
    available: tokio::sync::Semaphore,
}

struct Shim {
    keys: Arc<HashMap<String, (String, SealKey, seal::PublicKey)>>,
    /// None for the floor run: checked, then answered without storing anything.
    pool: Option<Pool>,
    nonces: Mutex<HashSet<[u8; 16]>>,
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("PostgreSQL connection: {e}");
        }
    });
    client
}

impl Postgres {
    /// Connects once to create (or empty) the table and learns units 0..n's keys.
    pub async fn connect(url: &str, n: usize) -> Postgres {
        let c = connect(url).await;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS gongwen_acks (
                 unit_id text NOT NULL,
                 request_id text NOT NULL,
                 document_id text NOT NULL,
                 envelope bytea NOT NULL,
                 acknowledged_at timestamptz NOT NULL,
                 PRIMARY KEY (unit_id, request_id))",
        )
        .await
        .expect("create table");
        let row = c
            .query_one(
                "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit'), \
                 current_setting('wal_sync_method')",
                &[],
            )
            .await
            .expect("settings");
        let (v, fsync, sync, method): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        println!("PostgreSQL: {v}; fsync={fsync}, synchronous_commit={sync}, wal_sync_method={method}");
        Postgres { url: url.to_owned(), keys: unit_keys(n) }
    }

    /// The ingest workload against the stand-in with a pool of `clients` connections.
    pub async fn run(&self, doc: &str, units: &[usize], clients: usize, calls: Calls) -> Rate {
        connect(&self.url).await.batch_execute("TRUNCATE gongwen_acks").await.expect("truncate");
        let mut conns = vec![];
        for _ in 0..clients {
            let c = connect(&self.url).await;
            let st = c.prepare(INSERT).await.expect("prepare");
            conns.push((c, st));
        }
        let pool = Pool {
            free: tokio::sync::Mutex::new((0..clients).collect()),
            available: tokio::sync::Semaphore::new(clients),
            conns,
        };
        let shim = Shim { keys: self.keys.clone(), pool: Some(pool), nonces: Mutex::new(HashSet::new()) };
        let rate = serve(shim, doc, units, clients, calls).await;
        let rows: i64 =
            connect(&self.url).await.query_one("SELECT count(*) FROM gongwen_acks", &[]).await.expect("count").get(0);
        assert_eq!(rows as usize, units.len() / clients * clients, "one row per acknowledgment");
        rate
    }
}

/// Units 0..n's keys, as the stand-in's registry.
fn unit_keys(n: usize) -> Arc<HashMap<String, (String, SealKey, seal::PublicKey)>> {
    let keys = (0..n)
        .map(|i| {
            let k = unit_key(i);
            let seal = SealKey {
                key_id: k.key_id.clone(),
                algorithm: KeyAlgorithm::Ed25519,
                public_key: k.public_key().to_vec(),
                valid_from: None,
                revoked_at: None,
            };
            let public = seal::PublicKey::parse(&seal).expect("valid key");
            (k.key_id.clone(), (unit_id(i), seal, public))
        })
        .collect();
    Arc::new(keys)
}

/// The floor run: the ingest workload against the stand-in with no database (units 0..n registered).
pub async fn floor(doc: &str, units: &[usize], clients: usize, n: usize, calls: Calls) -> Rate {
    let shim = Shim { keys: unit_keys(n), pool: None, nonces: Mutex::new(HashSet::new()) };
    serve(shim, doc, units, clients, calls).await
}

/// Serves `shim` on a loopback port for one ingest run.
async fn serve(shim: Shim, doc: &str, units: &[usize], clients: usize, calls: Calls) -> Rate {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|c| {
            let _ = c.set_nodelay(true);
        })
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DeliveryServiceServer::new(StandIn(Arc::new(shim))))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            }),
    );
    let raw = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
    let rate = ingest(&raw, doc, units, clients, calls).await;
    let _ = tx.send(());
    server.await.expect("join").expect("serve");
    rate
}

fn unauth(m: impl Into<String>) -> Status {
    Status::unauthenticated(m.into())
}

impl Shim {
    /// The same checks as gongwen's `App::authenticate` for a unit's token.
    /// `body_sha256` is the unary body's digest; `Act`'s token has none (`STREAMING_REQUESTS`).
    fn check_token<T>(&self, req: &Request<T>, method: &str, body_sha256: &[u8]) -> Result<(), Status> {
        let raw = req
            .metadata()
            .get_bin(gongwen::auth::HEADER)
            .ok_or_else(|| unauth("no request token"))?
            .to_bytes()
            .map_err(|_| unauth("bad token encoding"))?;
        let token = pb::AuthToken::decode(raw).map_err(|e| unauth(e.to_string()))?;
        let t = pb::RequestToken::decode(token.token.as_slice()).map_err(|e| unauth(e.to_string()))?;
        if t.method != method {
            return Err(unauth("wrong method"));
        }
        let now = Utc::now();
        let at = t.time.as_ref().map_or(0, |ts| ts.seconds);
        if (now.timestamp() - at).abs() > 300 {
            return Err(unauth("token time outside the skew"));
        }
        if t.body_sha256 != body_sha256 {
            return Err(unauth("token made for another body"));
        }
        let (owner, key, public) = self.keys.get(&token.key_id).ok_or_else(|| unauth("unknown key"))?;
        if owner != &t.unit_id {
            return Err(unauth("key of another unit"));
        }
        seal::verify_with(key, public, gongwen::auth::TOKEN_TYPE, &token.token, &token.signature, now)
            .map_err(|e| unauth(e.to_string()))?;
        let nonce: [u8; 16] = t.nonce.as_slice().try_into().map_err(|_| unauth("nonce must be 16 bytes"))?;
        if !self.nonces.lock().unwrap_or_else(|p| p.into_inner()).insert(nonce) {
            return Err(unauth("replayed nonce"));
        }
        Ok(())
    }
}

/// The digest a unary token carries: of the body as sent, one uncompressed gRPC frame of the message.
fn unary_digest(m: &pb::SignedEnvelope) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update((body.len() as u32).to_be_bytes());
    h.update(&body);
    h.finalize().to_vec()
}

impl Shim {
    /// One acknowledgment's checks and row, after its call's token was checked.
    async fn store(&self, env: pb::SignedEnvelope) -> Result<pb::Delivery, Status> {
        if env.payload_type != "gongwen.v1.Acknowledge" {
            return Err(Status::invalid_argument("not an Acknowledge"));
        }
        let ack =
            pb::Acknowledge::decode(env.payload.as_slice()).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (owner, key, public) = self.keys.get(&env.key_id).ok_or_else(|| unauth("unknown signing key"))?;
        if owner != &ack.unit_id {
            return Err(Status::permission_denied("key of another unit"));
        }
        seal::verify_with(key, public, &env.payload_type, &env.payload, &env.signature, Utc::now())
            .map_err(|e| unauth(e.to_string()))?;
        if let Some(pool) = &self.pool {
            let _permit = pool.available.acquire().await.map_err(|e| Status::internal(e.to_string()))?;
            let i = pool.free.lock().await.pop().ok_or_else(|| Status::internal("pool empty"))?;
            let (client, insert) = &pool.conns[i];
            let envelope = env.encode_to_vec();
            let result = client.execute(insert, &[&ack.unit_id, &ack.request_id, &ack.document_id, &envelope]).await;
            pool.free.lock().await.push(i);
            result.map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(pb::Delivery {
            document_id: ack.document_id,
            recipient_unit_id: ack.unit_id,
            state: pb::DeliveryState::Acknowledged as i32,
            ..Default::default()
        })
    }
}

type ActResults = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ActResult, Status>> + Send>>;

/// The served stand-in: `Act`'s results hold the shim past the handler.
struct StandIn(Arc<Shim>);

impl std::ops::Deref for StandIn {
    type Target = Shim;
    fn deref(&self) -> &Shim {
        &self.0
    }
}

#[tonic::async_trait]
impl DeliveryService for StandIn {
    async fn acknowledge(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        self.check_token(&req, METHOD, &unary_digest(req.get_ref()))?;
        Ok(Response::new(self.store(req.into_inner()).await?))
    }

    type ActStream = ActResults;

    /// As gongwen's: the token once for the call, then each statement's checks and row in turn.
    async fn act(&self, req: Request<Streaming<pb::SignedEnvelope>>) -> Result<Response<Self::ActStream>, Status> {
        self.check_token(&req, ACT_METHOD, &[])?;
        let state = (self.0.clone(), req.into_inner(), 0u64);
        let results = futures::stream::unfold(Some(state), |state| async move {
            let (shim, mut statements, index) = state?;
            let env = match statements.message().await {
                Ok(Some(env)) => env,
                Ok(None) => return None,
                Err(status) => return Some((Err(status), None)),
            };
            let outcome = match shim.store(env).await {
                Ok(d) => pb::act_result::Outcome::Delivery(d),
                Err(s) => pb::act_result::Outcome::Refusal(pb::ActRefusal {
                    code: s.code() as i32,
                    message: s.message().to_owned(),
                }),
            };
            Some((Ok(pb::ActResult { index, outcome: Some(outcome) }), Some((shim, statements, index + 1))))
        });
        Ok(Response::new(Box::pin(results)))
    }

    async fn r#return(&self, _: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn start_handling(&self, _: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn report(&self, _: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn complete(&self, _: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn remind(&self, _: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn get_delivery(&self, _: Request<pb::GetDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn list_inbox(&self, _: Request<pb::ListInboxRequest>) -> Result<Response<pb::ListInboxReply>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    type WatchInboxStream = tokio_stream::Empty<Result<pb::InboxNotice, Status>>;

    async fn watch_inbox(&self, _: Request<pb::WatchInboxRequest>) -> Result<Response<Self::WatchInboxStream>, Status> {
        Err(Status::unimplemented("stand-in"))
    }
}
