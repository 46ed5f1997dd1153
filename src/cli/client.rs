//! Client subcommands: each signs (where it acts) on this side, calls one RPC, and prints the reply.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use std::io::Write;
use tonic::transport::Channel;

use super::draft::{DraftFile, media_type_for};
use super::keystore::Keystore;
use super::views::{DeliveryOut, DocumentOut, MatrixOut, NodeOut, OverdueOut, TraceOut, UnitOut};
use super::{Actor, CliError, Command, RegistryCommand};
use crate::pb;
use crate::pb::delivery_service_client::DeliveryServiceClient;
use crate::pb::document_service_client::DocumentServiceClient;
use crate::pb::registry_service_client::RegistryServiceClient;
use crate::pb::trace_service_client::TraceServiceClient;
use crate::registry_file;
use crate::signing::Statement;

/// The page size `not-acted` asks for: the largest the server sends (some 1.3 MB), since each page costs the
/// server a pass over the whole tree's deliveries.
const WHOLE_PAGES: u32 = 10_000;

const UPLOAD_CHUNK: usize = 256 * 1024;
/// Replies such as a 200,000-node trace are far above tonic's 4 MiB default.
const MAX_REPLY: usize = 256 * 1024 * 1024;

type Ch = crate::auth::Signed<Channel>;

/// A connection to a server plus the local keystore.
pub struct Client {
    channel: Ch,
    /// The connection itself, for calls signed as someone other than the reader (uploads by the acting unit).
    raw: Channel,
    pub keys: Keystore,
    json: bool,
    /// The address it was given, e.g. `http://127.0.0.1:50051`.
    server: String,
}

/// A fresh request id (uuid v4): a retry must reuse it, anything new must not.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io { path: path.display().to_string(), source })
}

/// TLS settings of a client connection (used for https:// servers).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// CA certificate (PEM) to trust.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub client: Option<Vec<PathBuf>>,
}

fn read_pem(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io { path: path.display().to_string(), source })
}

impl Client {
    /// Connects to `server`; every request is signed as `reader` (a unit id, or "operator") with its keystore key.
    pub async fn connect(server: &str, keys: &Path, reader: &str, json: bool) -> Result<Client, CliError> {
        Client::connect_with(server, keys, reader, json, &Tls::default()).await
    }

    /// [`Client::connect`] with TLS settings.
    pub async fn connect_with(
        server: &str,
        keys: &Path,
        reader: &str,
        json: bool,
        tls: &Tls,
    ) -> Result<Client, CliError> {
        let keys = Keystore::new(keys);
        let signer = keys.load(reader)?;
        let channel = connect_channel(server, tls).await?;
        let raw = channel.clone();
        let channel = tower::Layer::layer(&crate::auth::SignRequests::new(reader, signer), channel);
        Ok(Client { channel, raw, keys, json, server: server.to_owned() })
    }

    /// The server's address as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn registry(&self) -> RegistryServiceClient<Ch> {
        RegistryServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY)
    }
    pub fn documents(&self) -> DocumentServiceClient<Ch> {
        DocumentServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY)
    }
    pub fn deliveries(&self) -> DeliveryServiceClient<Ch> {
        DeliveryServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY)
    }
    pub fn audit(&self) -> crate::pb::audit_service_client::AuditServiceClient<Ch> {
        crate::pb::audit_service_client::AuditServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_REPLY)
    }
    pub fn supervision(&self) -> crate::pb::supervision_service_client::SupervisionServiceClient<Ch> {
        crate::pb::supervision_service_client::SupervisionServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_REPLY)
    }
    pub fn tracer(&self) -> TraceServiceClient<Ch> {
        TraceServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY)
    }

    pub(super) fn print<T: Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) -> Result<(), CliError> {
        if self.json {
            let s = serde_json::to_string_pretty(value).map_err(|e| CliError::Input(e.to_string()))?;
            println!("{s}");
        } else {
            print!("{}", text(value));
        }
        Ok(())
    }

    /// Signs a statement as `unit` with its keystore key.
    pub fn sign<M: Statement>(&self, unit: &str, m: &M) -> Result<pb::SignedEnvelope, CliError> {
        Ok(self.keys.load(unit)?.envelope(m))
    }

    /// A document id from an id or a number such as 鲁财采〔2022〕14号.
    pub async fn resolve(&self, doc: &str) -> Result<String, CliError> {
        if doc.starts_with("d-") {
            return Ok(doc.to_owned());
        }
        let req = pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Number(doc.to_owned())) };
        Ok(self.documents().get_document(req).await?.into_inner().id)
    }

    /// Uploads a file's bytes with a token of `uploader` (the reader when `None`): only the uploader, or a reader
    /// of a document listing the file, may attach it. Returns the server's reply.
    pub async fn upload_bytes(
        &self,
        uploader: Option<&str>,
        name: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<pb::UploadReply, CliError> {
        let mut msgs = vec![pb::UploadChunk {
            part: Some(pb::upload_chunk::Part::Meta(pb::UploadMeta {
                file_name: name.to_owned(),
                media_type: media_type.to_owned(),
                expected_sha256: String::new(),
            })),
        }];
        msgs.extend(
            bytes
                .chunks(UPLOAD_CHUNK)
                .map(|c| pb::UploadChunk { part: Some(pb::upload_chunk::Part::Chunk(c.to_vec())) }),
        );
        let mut documents = match uploader {
            Some(unit) => DocumentServiceClient::new(tower::Layer::layer(
                &crate::auth::SignRequests::new(unit, self.keys.load(unit)?),
                self.raw.clone(),
            )),
            None => self.documents(),
        };
        Ok(documents.upload_attachment(tokio_stream::iter(msgs)).await?.into_inner())
    }

    async fn upload_file(
        &self,
        uploader: Option<&str>,
        path: &Path,
        media_type: Option<&str>,
    ) -> Result<(pb::UploadReply, String), CliError> {
        let media = media_type.map_or_else(|| media_type_for(path), str::to_owned);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok((self.upload_bytes(uploader, &name, &media, read_file(path)?).await?, media))
    }

    /// Reads a draft file and uploads its attachments as `uploader`, the unit about to issue it.
    async fn draft(&self, uploader: &str, path: &Path) -> Result<pb::DocumentDraft, CliError> {
        let (file, base) = DraftFile::read(path)?;
        let mut refs = vec![];
        for a in &file.attachments {
            let (reply, media) = self.upload_file(Some(uploader), &base.join(&a.file), a.media_type.as_deref()).await?;
            refs.push(pb::AttachmentRef { sha256: reply.sha256, title: a.title.clone(), media_type: media });
        }
        file.to_wire(&base, refs)
    }

    async fn names(&self) -> HashMap<String, String> {
        let mut names = HashMap::new();
        let mut token = String::new();
        loop {
            let req = pb::ListUnitsRequest {
                page: Some(pb::PageRequest { page_size: 1000, page_token: token.clone() }),
                ..Default::default()
            };
            let Ok(page) = self.registry().list_units(req).await else { break };
            let page = page.into_inner();
            names.extend(page.units.into_iter().map(|u| (u.id, u.full_name)));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        names
    }

    async fn print_document(&self, doc: pb::Document) -> Result<(), CliError> {
        let names = if self.json { HashMap::new() } else { self.names().await };
        let mut out = DocumentOut::from(doc);
        if !out.forwards_document_id.is_empty() {
            let key = pb::get_document_request::Key::Id(out.forwards_document_id.clone());
            // The link is still printed as an id if the source cannot be fetched; the document itself was.
            if let Ok(src) = self.documents().get_document(pb::GetDocumentRequest { key: Some(key) }).await {
                let src = src.into_inner();
                out.forwards_document_number = src.number;
                out.forwards_document_title = src.draft.map(|d| d.title).unwrap_or_default();
            }
        }
        self.print(&out, |d| d.text(&|id: &str| names.get(id).map_or_else(|| id.to_owned(), |n| format!("{n} ({id})"))))
    }

    async fn print_delivery(&self, d: pb::Delivery) -> Result<(), CliError> {
        let mut out = DeliveryOut::from(d);
        if !self.json {
            let names = self.names().await;
            for h in &mut out.history {
                if let Some(n) = names.get(&h.actor) {
                    h.actor = n.clone();
                }
            }
        }
        self.print(&out, DeliveryOut::text)
    }

    fn request_id(actor: &Actor) -> String {
        actor.request_id.clone().unwrap_or_else(new_request_id)
    }

    /// Runs one client command.
    pub async fn run(&self, command: Command) -> Result<(), CliError> {
        match command {
            Command::Registry(r) => self.registry_command(r).await,
            Command::Keys(k) => self.keys_command(k).await,
            Command::Upload { file, media_type } => {
                let (reply, _) = self.upload_file(None, &file, media_type.as_deref()).await?;
                #[derive(Serialize)]
                struct Out {
                    sha256: String,
                    size: u64,
                    newly_stored: bool,
                }
                let out = Out { sha256: reply.sha256, size: reply.size, newly_stored: reply.newly_stored };
                self.print(&out, |o| {
                    format!(
                        "{}  {} bytes{}\n",
                        o.sha256,
                        o.size,
                        if o.newly_stored { "" } else { " (uploaded before)" }
                    )
                })
            }
            Command::Download { sha256, output } => self.download(&sha256, output).await,
            Command::Issue { actor, draft } => {
                let draft = self.draft(&actor.unit, &draft).await?;
                let m = pb::IssueDocument {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    draft: Some(draft),
                };
                let doc = self.documents().issue_document(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_document(doc).await
            }
            Command::Forward { actor, source, draft } => {
                let source_document_id = self.resolve(&source).await?;
                let draft = self.draft(&actor.unit, &draft).await?;
                let m = pb::ForwardDocument {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    source_document_id,
                    draft: Some(draft),
                };
                let doc = self.documents().forward_document(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_document(doc).await
            }
            Command::Show { document } => {
                let id = self.resolve(&document).await?;
                let req = pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id(id)) };
                let doc = self.documents().get_document(req).await?.into_inner();
                self.print_document(doc).await
            }
            Command::Issued { unit } => {
                let mut all = vec![];
                let mut token = String::new();
                loop {
                    let req = pb::ListIssuedRequest {
                        unit_id: unit.clone(),
                        page: Some(pb::PageRequest { page_size: 200, page_token: token.clone() }),
                    };
                    let page = self.documents().list_issued(req).await?.into_inner();
                    all.extend(page.documents.into_iter().map(DocumentOut::from));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    token = page.next_page_token;
                }
                self.print(&all, |docs| {
                    docs.iter()
                        .map(|d| format!("{}  {}\n    id {}  issued {}\n", d.number, d.title, d.id, d.issued_at))
                        .collect()
                })
            }
            Command::Inbox { unit, state } => self.inbox(&unit, &state).await,
            Command::Delivery { document, unit } => {
                let document_id = self.resolve(&document).await?;
                let req = pb::GetDeliveryRequest { document_id, recipient_unit_id: unit };
                let d = self.deliveries().get_delivery(req).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Ack { actor, mut documents, all_pending, registration } => {
                if all_pending || documents.len() > 1 {
                    if !registration.is_empty() {
                        return Err(CliError::Input("--registration numbers one document; give one".into()));
                    }
                    let acks = self.ack_many(&actor.unit, actor.request_id.as_deref(), documents, all_pending).await?;
                    return self.print_acks(&acks);
                }
                let document = documents.pop().ok_or_else(|| CliError::Input("no document to acknowledge".into()))?;
                let m = pb::Acknowledge {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    document_id: self.resolve(&document).await?,
                    registration_number: registration,
                };
                let d = self.deliveries().acknowledge(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Return { actor, document, reason } => {
                let m = pb::ReturnDelivery {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    document_id: self.resolve(&document).await?,
                    reason,
                };
                let d = self.deliveries().r#return(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Handle { actor, document, lead_office, note } => {
                let m = pb::StartHandling {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    document_id: self.resolve(&document).await?,
                    lead_office,
                    note,
                };
                let d = self.deliveries().start_handling(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Report { actor, document, text, attach } => {
                let mut attachment_sha256 = vec![];
                for f in &attach {
                    attachment_sha256.push(self.upload_file(Some(&actor.unit), f, None).await?.0.sha256);
                }
                let m = pb::SubmitReport {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    document_id: self.resolve(&document).await?,
                    text,
                    attachment_sha256,
                };
                let d = self.deliveries().report(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Complete { actor, document, note } => {
                let m = pb::Complete {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    document_id: self.resolve(&document).await?,
                    note,
                };
                let d = self.deliveries().complete(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Remind { actor, document, recipient, message } => {
                let m = pb::Remind {
                    request_id: Self::request_id(&actor),
                    unit_id: actor.unit.clone(),
                    document_id: self.resolve(&document).await?,
                    recipient_unit_id: recipient,
                    message,
                };
                let d = self.deliveries().remind(self.sign(&actor.unit, &m)?).await?.into_inner();
                self.print_delivery(d).await
            }
            Command::Trace { document, depth } => {
                let tree = self.trace(&document, depth).await?;
                self.print(&tree, TraceOut::text)
            }
            Command::NotActed { document } => {
                let nodes: Vec<NodeOut> =
                    self.not_acted(&document, WHOLE_PAGES).await?.into_iter().map(NodeOut::from).collect();
                self.print(&nodes, |ns| {
                    let mut s: String = ns.iter().map(|n| format!("{}\n", n.line())).collect();
                    s.push_str(&format!("{} not acted\n", ns.len()));
                    s
                })
            }
            Command::Watch { unit } => self.watch(&unit).await,
            Command::Overdue { document, region } => {
                let scope = match (document, region) {
                    (Some(d), _) => pb::overdue_request::Scope::DocumentId(self.resolve(&d).await?),
                    (None, Some(r)) => pb::overdue_request::Scope::RegionCode(r),
                    (None, None) => return Err(CliError::Input("give --document or --region".into())),
                };
                let reply = self
                    .supervision()
                    .list_overdue(pb::OverdueRequest { scope: Some(scope), order: 0 })
                    .await?
                    .into_inner();
                let items: Vec<OverdueOut> = reply.items.into_iter().map(Into::into).collect();
                self.print(&items, |is| {
                    let mut s: String = is
                        .iter()
                        .map(|i| {
                            format!(
                                "{:>4} days  {}  {}  due {}  {}  催办 {}\n",
                                i.days_late, i.unit_name, i.document_number, i.deadline, i.state, i.reminders
                            )
                        })
                        .collect();
                    s.push_str(&format!("{} overdue\n", is.len()));
                    s
                })
            }
            Command::Matrix { document, units } => {
                let document_id = self.resolve(&document).await?;
                let m = self
                    .supervision()
                    .status_matrix(pb::MatrixRequest { document_id, with_units: units })
                    .await?
                    .into_inner();
                let out = MatrixOut::from(m);
                self.print(&out, MatrixOut::text)
            }
            Command::UnitView { unit } => {
                let v = self.supervision().unit_view(pb::UnitViewRequest { unit_id: unit }).await?.into_inner();
                #[derive(Serialize)]
                struct Issued {
                    number: String,
                    title: String,
                    recipients: u32,
                    not_acted: Vec<String>,
                }
                #[derive(Serialize)]
                struct Out {
                    open_received: Vec<DeliveryOut>,
                    issued: Vec<Issued>,
                }
                let out = Out {
                    open_received: v.open_received.into_iter().map(Into::into).collect(),
                    issued: v
                        .issued
                        .into_iter()
                        .map(|i| Issued {
                            number: i.document_number,
                            title: i.document_title,
                            recipients: i.recipients,
                            not_acted: i.not_acted_unit_ids,
                        })
                        .collect(),
                };
                self.print(&out, |o| {
                    let mut s = format!("received and not finished ({}):\n", o.open_received.len());
                    for d in &o.open_received {
                        s.push_str(&format!("  {}\n", d.line()));
                    }
                    s.push_str(&format!("issued ({}):\n", o.issued.len()));
                    for i in &o.issued {
                        s.push_str(&format!(
                            "  {}  {}  {} of {} not acted: {}\n",
                            i.number,
                            i.title,
                            i.not_acted.len(),
                            i.recipients,
                            i.not_acted.join(", ")
                        ));
                    }
                    s
                })
            }
            Command::ExportReport { kind, document, region, output } => {
                let kind = match kind.as_str() {
                    "trace" => pb::ReportKind::Trace,
                    "matrix" => pb::ReportKind::Matrix,
                    "overdue" => pb::ReportKind::Overdue,
                    other => return Err(CliError::Input(format!("unknown report {other:?} (trace, matrix, overdue)"))),
                };
                let xlsx = output.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
                let format = if xlsx { pb::ReportFormat::Xlsx } else { pb::ReportFormat::Csv };
                let document_id = match document {
                    Some(d) => self.resolve(&d).await?,
                    None => String::new(),
                };
                let req = pb::ReportRequest {
                    kind: kind as i32,
                    format: format as i32,
                    document_id,
                    region_code: region.unwrap_or_default(),
                };
                let file = self.supervision().export_report(req).await?.into_inner();
                std::fs::write(&output, &file.content)
                    .map_err(|source| CliError::Io { path: output.display().to_string(), source })?;
                eprintln!("{} ({} bytes) written to {}", file.file_name, file.content.len(), output.display());
                Ok(())
            }
            Command::Info => {
                let i = self.registry().get_server_info(pb::GetServerInfoRequest {}).await?.into_inner();
                #[derive(Serialize)]
                struct Out {
                    version: String,
                    operator_key_id: String,
                    operator_public_key: String,
                    log_origin: String,
                    log_public_key: String,
                    max_attachment_bytes: u64,
                }
                let out = Out {
                    version: i.version,
                    operator_key_id: i.operator_key_id,
                    operator_public_key: hex::encode(i.operator_public_key),
                    log_origin: i.log_origin,
                    log_public_key: hex::encode(i.log_public_key),
                    max_attachment_bytes: i.max_attachment_bytes,
                };
                self.print(&out, |o| {
                    format!(
                        "gongwen {}
operator key {} {}
log {} key {}
attachments up to {} bytes
",
                        o.version,
                        o.operator_key_id,
                        o.operator_public_key,
                        o.log_origin,
                        o.log_public_key,
                        o.max_attachment_bytes
                    )
                })
            }
            Command::Checkpoint { output } => super::audit::save_checkpoint(self, &output).await,
            Command::Export { document, from, to, previous, output } => {
                super::audit::export(self, document, from, to, previous, &output).await
            }
            Command::Verify { log_key, operator_key, previous, .. } => {
                super::audit::verify_live(self, log_key, operator_key, previous, self.json).await
            }
            Command::Backup { output } => {
                let mut stream = crate::pb::admin_service_client::AdminServiceClient::new(self.channel.clone())
                    .backup(pb::BackupRequest {})
                    .await?
                    .into_inner();
                let io = |source| CliError::Io { path: output.display().to_string(), source };
                let mut out = crate::app::backup::Output::create(&output).map_err(io)?;
                let mut total = 0usize;
                while let Some(c) = stream.message().await? {
                    out.file().write_all(&c.chunk).map_err(io)?;
                    total += c.chunk.len();
                }
                out.finish().map_err(io)?;
                eprintln!("backup of {total} bytes written to {}", output.display());
                Ok(())
            }
            Command::Serve(_)
            | Command::Demo { .. }
            | Command::Keygen { .. }
            | Command::Health
            | Command::Parse { .. }
            | Command::Import { .. }
            | Command::Restore { .. } => Err(CliError::Input("not a client command".into())),
        }
    }

    /// The trace of a document (id or number), listed down to `max_depth` (0 for all levels). Read as a stream,
    /// so no tree is too large for one message.
    pub async fn trace(&self, document: &str, max_depth: u32) -> Result<TraceOut, CliError> {
        let document_id = self.resolve(document).await?;
        let req = pb::StreamTraceRequest { document_id, max_depth, chunk_nodes: 0 };
        let mut stream = self.tracer().stream_trace(req).await?.into_inner();
        let mut chunks = vec![];
        while let Some(chunk) = stream.message().await? {
            chunks.push(chunk);
        }
        let tree = super::assemble::assemble_trace(chunks)
            .map_err(|e| CliError::Input(format!("the server sent a malformed trace: {e}")))?;
        Ok(tree.into())
    }

    /// Every recipient of `document` that has not acted, read page after page (`page_size` 0: the server's
    /// default).
    pub async fn not_acted(&self, document: &str, page_size: u32) -> Result<Vec<pb::TraceNode>, CliError> {
        let document_id = self.resolve(document).await?;
        let mut nodes = vec![];
        let mut page_token = String::new();
        loop {
            let request = pb::ListNotActedRequest { document_id: document_id.clone(), page_size, page_token };
            let reply = self.tracer().list_not_acted(request).await?.into_inner();
            nodes.extend(reply.nodes);
            if reply.next_page_token.is_empty() {
                return Ok(nodes);
            }
            page_token = reply.next_page_token;
        }
    }

    async fn download(&self, sha256: &str, output: Option<PathBuf>) -> Result<(), CliError> {
        let mut stream =
            self.documents().download_attachment(pb::DownloadRequest { sha256: sha256.to_owned() }).await?.into_inner();
        let mut bytes = vec![];
        while let Some(chunk) = stream.message().await? {
            bytes.extend_from_slice(&chunk.chunk);
        }
        match output {
            Some(path) => {
                std::fs::write(&path, &bytes)
                    .map_err(|source| CliError::Io { path: path.display().to_string(), source })?;
                eprintln!("{} bytes written to {}", bytes.len(), path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)
                    .and_then(|()| out.flush())
                    .map_err(|source| CliError::Io { path: "stdout".into(), source })?;
            }
        }
        Ok(())
    }

    async fn inbox(&self, unit: &str, states: &[String]) -> Result<(), CliError> {
        let mut wire_states = vec![];
        for s in states {
            let st = pb::DeliveryState::from_str_name(&format!("DELIVERY_STATE_{}", s.trim().to_uppercase()))
                .ok_or_else(|| CliError::Input(format!("unknown state {s:?}")))?;
            wire_states.push(st as i32);
        }
        let all: Vec<DeliveryOut> =
            self.whole_inbox(unit, wire_states).await?.into_iter().map(DeliveryOut::from).collect();
        self.print(&all, |ds| {
            let mut s: String = ds.iter().map(|d| format!("{}\n", d.line())).collect();
            s.push_str(&format!("{} in the inbox\n", ds.len()));
            s
        })
    }

    /// Every delivery in `unit`'s inbox in one of `states` (all states when empty), newest first, read page by page.
    pub(super) async fn whole_inbox(&self, unit: &str, states: Vec<i32>) -> Result<Vec<pb::Delivery>, CliError> {
        let mut all = vec![];
        let mut token = String::new();
        loop {
            let req = pb::ListInboxRequest {
                unit_id: unit.to_owned(),
                states: states.clone(),
                page: Some(pb::PageRequest { page_size: 200, page_token: token.clone() }),
            };
            let page = self.deliveries().list_inbox(req).await?.into_inner();
            all.extend(page.deliveries);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            token = page.next_page_token;
        }
    }

    async fn watch(&self, unit: &str) -> Result<(), CliError> {
        let mut stream =
            self.deliveries().watch_inbox(pb::WatchInboxRequest { unit_id: unit.to_owned() }).await?.into_inner();
        eprintln!("watching the inbox of {unit}; Ctrl-C stops");
        while let Some(n) = stream.message().await? {
            let kind = if n.kind == pb::EventKind::Reminded as i32 { "催办 reminder" } else { "新收文 new" };
            if let Some(d) = n.delivery {
                let d = DeliveryOut::from(d);
                self.print(&d, |d| format!("{kind}: {}\n", d.line()))?;
            }
        }
        Ok(())
    }

    async fn registry_command(&self, command: RegistryCommand) -> Result<(), CliError> {
        match command {
            RegistryCommand::Load { file, bundled, generate_keys, baseline } => {
                let text = match (&file, bundled) {
                    (Some(f), false) => std::fs::read_to_string(f)
                        .map_err(|source| CliError::Io { path: f.display().to_string(), source })?,
                    (None, true) => registry_file::BUNDLED.to_owned(),
                    _ => return Err(CliError::Input("give a registry file or --bundled".into())),
                };
                let reply = self.load_registry(&text, generate_keys, &baseline).await?;
                #[derive(Serialize)]
                struct Out {
                    regions: u32,
                    units: u32,
                    groups: u32,
                    baselines: u32,
                    event_seq: u64,
                }
                let out = Out {
                    regions: reply.regions_created,
                    units: reply.units_created,
                    groups: reply.groups_created,
                    baselines: reply.baselines_set,
                    event_seq: reply.event_seq,
                };
                self.print(&out, |o| {
                    format!(
                        "created {} regions, {} units, {} groups; {} number baselines set (event #{})\n",
                        o.regions, o.units, o.groups, o.baselines, o.event_seq
                    )
                })
            }
            RegistryCommand::Units { region, level, kind, tag } => {
                let level = match level.as_deref() {
                    None => 0,
                    Some(l) => registry_file::level_by_name(l)
                        .map(|l| crate::grpc::convert::level(l) as i32)
                        .ok_or_else(|| CliError::Input(format!("unknown level {l:?}")))?,
                };
                let kind = match kind.as_deref() {
                    None => 0,
                    Some(k) => registry_file::kind_by_name(k)
                        .map(|k| crate::grpc::convert::kind(k) as i32)
                        .ok_or_else(|| CliError::Input(format!("unknown kind {k:?}")))?,
                };
                let mut all = vec![];
                let mut token = String::new();
                loop {
                    let req = pb::ListUnitsRequest {
                        region_subtree: region.clone(),
                        level,
                        kind,
                        tag: tag.clone(),
                        page: Some(pb::PageRequest { page_size: 1000, page_token: token.clone() }),
                    };
                    let page = self.registry().list_units(req).await?.into_inner();
                    all.extend(page.units.into_iter().map(UnitOut::from));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    token = page.next_page_token;
                }
                self.print(&all, |us| us.iter().map(|u| format!("{}\n", u.line())).collect())
            }
            RegistryCommand::Unit { id } => {
                let u = UnitOut::from(self.registry().get_unit(pb::GetUnitRequest { id }).await?.into_inner());
                self.print(&u, |u| {
                    format!(
                        "{}\n  short name {}\n  tags {}\n  keys {}\n",
                        u.line(),
                        u.short_name,
                        u.tags.join(", "),
                        u.keys.join(", ")
                    )
                })
            }
            RegistryCommand::Regions { subtree } => {
                let reply =
                    self.registry().list_regions(pb::ListRegionsRequest { subtree_of: subtree }).await?.into_inner();
                #[derive(Serialize)]
                struct R {
                    code: String,
                    name: String,
                    parent: String,
                }
                let rs: Vec<R> = reply
                    .regions
                    .into_iter()
                    .map(|r| R { code: r.code, name: r.name, parent: r.parent_code })
                    .collect();
                self.print(&rs, |rs| {
                    rs.iter().map(|r| format!("{:<10} {}  (in {})\n", r.code, r.name, r.parent)).collect()
                })
            }
            RegistryCommand::Groups => {
                let reply = self.registry().list_groups(pb::ListGroupsRequest {}).await?.into_inner();
                #[derive(Serialize)]
                struct G {
                    name: String,
                    description: String,
                }
                let gs: Vec<G> =
                    reply.groups.into_iter().map(|g| G { name: g.name, description: g.description }).collect();
                self.print(&gs, |gs| gs.iter().map(|g| format!("{}  — {}\n", g.name, g.description)).collect())
            }
            RegistryCommand::Expand { group, issuer } => {
                let req = pb::ExpandGroupRequest { group, issuer_unit_id: issuer };
                let us: Vec<UnitOut> =
                    self.registry().expand_group(req).await?.into_inner().units.into_iter().map(Into::into).collect();
                self.print(&us, |us| {
                    let mut s: String = us.iter().map(|u| format!("{}\n", u.line())).collect();
                    s.push_str(&format!("{} units\n", us.len()));
                    s
                })
            }
        }
    }

    /// Loads a registry file: keys from (or generated into) the keystore, signed by the operator key.
    pub async fn load_registry(
        &self,
        text: &str,
        generate_keys: bool,
        baselines: &[String],
    ) -> Result<pb::RegistryChangeReply, CliError> {
        let file = registry_file::parse(text)?;
        // Bad input is refused before any key is generated, so a failed load leaves the keystore as it was.
        let number_baselines = baselines.iter().map(|b| parse_baseline(b)).collect::<Result<Vec<_>, _>>()?;
        let mut change = file.into_change(new_request_id(), |id| -> Result<_, CliError> {
            let signer = if generate_keys { self.keys.load_or_generate(id)?.0 } else { self.keys.load(id)? };
            Ok(vec![signer.seal_key()])
        })?;
        change.number_baselines = number_baselines;
        let env = self.sign("operator", &change)?;
        Ok(self.registry().apply_registry_change(env).await?.into_inner())
    }
}

/// A connection to `server`, over TLS (with `tls`'s CA and client certificate) for an `https://` address.
async fn connect_channel(server: &str, tls: &Tls) -> Result<Channel, CliError> {
    let mut endpoint = Channel::from_shared(server.to_owned())
        .map_err(|e| CliError::Input(format!("bad server address {server:?}: {e}")))?;
    if !server.starts_with("https://") && (tls.ca.is_some() || tls.client.is_some()) {
        // Else the CA would be ignored without a word, and a TLS server's answer would read "transport error".
        return Err(CliError::Input(format!(
            "--tls-ca and --tls-client are for a server over TLS, and {server} is not one: give --server https://…"
        )));
    }
    if server.starts_with("https://") {
        let mut t = tonic::transport::ClientTlsConfig::new();
        if let Some(ca) = &tls.ca {
            t = t.ca_certificate(tonic::transport::Certificate::from_pem(read_pem(ca)?));
        }
        if let Some([cert, key]) = tls.client.as_deref() {
            t = t.identity(tonic::transport::Identity::from_pem(read_pem(cert)?, read_pem(key)?));
        }
        endpoint = endpoint.tls_config(t).map_err(|e| CliError::Input(format!("TLS: {e}")))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|e| CliError::Connect { server: server.to_owned(), reason: crate::server::error_chain(&e) })
}

/// Asks the server's health service (no token needed), over TLS for an `https://` address.
pub async fn health(server: &str, tls: &Tls) -> Result<(), CliError> {
    let channel = connect_channel(server, tls).await?;
    let reply = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await?
        .into_inner();
    use tonic_health::pb::health_check_response::ServingStatus;
    match ServingStatus::try_from(reply.status) {
        Ok(ServingStatus::Serving) => {
            println!("SERVING");
            Ok(())
        }
        Ok(other) => Err(CliError::Input(format!(
            "{}: the server is up but not serving (its log says why)",
            other.as_str_name()
        ))),
        Err(_) => Err(CliError::Input(format!("not serving (status {})", reply.status))),
    }
}

/// `PREFIX:YEAR:LAST`, e.g. `鲁财采:2022:13`.
pub fn parse_baseline(text: &str) -> Result<pb::NumberBaseline, CliError> {
    let bad = || CliError::Input(format!("{text:?}: a baseline is PREFIX:YEAR:LAST_SERIAL, e.g. 鲁财采:2022:13"));
    let mut parts = text.split(':');
    let (Some(prefix), Some(year), Some(last), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    Ok(pb::NumberBaseline {
        prefix: prefix.to_owned(),
        year: year.parse().map_err(|_| bad())?,
        last_serial: last.parse().map_err(|_| bad())?,
    })
}
