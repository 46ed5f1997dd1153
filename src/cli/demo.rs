//! `gongwen demo`: the corpus chain issued, forwarded, acted on and traced, through the real gRPC API.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use super::CliError;
use super::client::{Client, new_request_id};
use super::keystore::Keystore;
use super::serve::{operator_seal, shutdown_signal};
use super::views::TraceOut;
use crate::pb;
use crate::server::{self, ServerConfig};

const CORPUS: &str = include_str!("../../tests/fixtures/forwarding-chain-lu-zi-bo-2022.txt");
const MARKER: &str = ".gongwen-demo";

pub const PROVINCE: &str = "370000.czt";
pub const ZIBO: &str = "370300.czj";
pub const BOSHAN: &str = "370304.czj";

/// The text between `start` (included) and `end` (included when `keep_end`), from the `nth` match of `start`.
fn cut<'a>(start: &str, end: &str, nth: usize, keep_end: bool) -> &'a str {
    let Some(from) = CORPUS.match_indices(start).nth(nth).map(|(i, _)| i) else { return "" };
    let rest = &CORPUS[from..];
    match rest.find(end) {
        Some(to) => &rest[..if keep_end { to + end.len() } else { to }],
        None => rest,
    }
}

/// A section heading such as 一、…: a line of its own, without closing punctuation.
fn section_heading(line: &str) -> bool {
    let mut chars = line.chars();
    chars.next().is_some_and(|c| "一二三四五六七八九十".contains(c)) && chars.next() == Some('、')
}

/// A line that starts a paragraph: a section heading or a run-in （一） heading.
fn starts_paragraph(line: &str) -> bool {
    section_heading(line) || line.starts_with('（')
}

/// Joins lines a PDF page break split in the middle of a sentence. A 一、 heading line has no closing punctuation,
/// so it must not swallow the paragraph after it.
fn unbreak(text: &str) -> String {
    let mut out = String::new();
    let mut last_line = "";
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            let ends_sentence =
                out.ends_with(['。', '：', '；', '！', '？']) || !out.ends_with(|c: char| c > '\u{2e80}');
            let heading_before = section_heading(last_line);
            if ends_sentence || heading_before || starts_paragraph(line) {
                out.push('\n');
            }
        }
        out.push_str(line);
        last_line = line;
    }
    out
}

/// A table from the PDF text: one row per line, blank lines between rows dropped.
fn table_rows(text: &str) -> String {
    let rows: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    rows.join("\n") + "\n"
}

/// What the demo created.
pub struct DemoOutcome {
    pub province: pb::Document,
    pub city: pb::Document,
    pub district: pb::Document,
    pub trace: TraceOut,
}

fn draft(prefix: &str, main: &[&str], dated: &str, body: String) -> pb::DocumentDraft {
    pb::DocumentDraft {
        number_prefix: prefix.into(),
        number_year: 2022,
        genre: pb::Genre::Notice as i32,
        main_recipients: main.iter().map(|g| super::draft::recipient(g)).collect(),
        dated: dated.into(),
        body,
        ..Default::default()
    }
}

/// The demo's steps against a running server whose operator key is `operator` in the keystore at `keys`.
pub async fn flow(server: &str, keys: &Path, log: &mut String) -> Result<DemoOutcome, CliError> {
    let c = Client::connect(server, keys, "operator", false).await?;
    // 博山区财政局 seals with SM2/SM3 (the national algorithms), everyone else with Ed25519: both travel side by side.
    let sm2 = Keystore::new(keys);
    if !sm2.has(BOSHAN) {
        sm2.generate_with(BOSHAN, None, crate::domain::model::KeyAlgorithm::Sm2)?;
    }
    let baselines = ["鲁财采:2022:13".to_string(), "淄财采:2022:19".into(), "博财采:2022:18".into()];
    let loaded = c.load_registry(crate::registry_file::BUNDLED, true, &baselines).await?;
    let _ = writeln!(
        log,
        "registry: {} regions, {} units, {} recipient groups loaded, a seal key generated for every unit in {}",
        loaded.regions_created,
        loaded.units_created,
        loaded.groups_created,
        keys.display()
    );
    let _ =
        writeln!(log, "{BOSHAN} (博山区财政局) seals with SM2/SM3 (GB/T 32918, GB/T 32905); the others with Ed25519");
    let _ = writeln!(log, "numbering continues from paper: 鲁财采 2022 after 13, 淄财采 after 19, 博财采 after 18");

    let table = table_rows(cut("山东省政府购买服务改革联系点名单\n\n地级市", "信息公开选项", 0, false));
    let up = c.upload_bytes(Some(PROVINCE), "联系点名单.txt", "text/plain; charset=utf-8", table.into_bytes()).await?;
    let _ = writeln!(log, "uploaded 附件 山东省政府购买服务改革联系点名单 ({} bytes, sha256 {})", up.size, up.sha256);

    let mut p = draft(
        "鲁财采",
        &["各市财政局", "省直各部门、单位"],
        "2022-08-16",
        unbreak(cut("为推进我省政府购买服务改革", "联系人及电话", 0, false)),
    );
    p.title = "山东省财政厅关于做好政府购买服务改革重点工作的通知".into();
    p.printed_by = "山东省财政厅办公室".into();
    p.printed_on = "2022-08-16".into();
    p.disclosure = pb::Disclosure::Public as i32;
    p.contact = "王高文 0531-51769834".into();
    p.attachments = vec![pb::AttachmentRef {
        sha256: up.sha256,
        title: "山东省政府购买服务改革联系点名单".into(),
        media_type: "text/plain; charset=utf-8".into(),
    }];
    p.recipient_deadlines = vec![pb::RecipientDeadline {
        recipient: Some(super::draft::recipient("省直重点领域主管部门")),
        due: "2022-11-30".into(),
    }];
    let m = pb::IssueDocument { request_id: new_request_id(), unit_id: PROVINCE.into(), draft: Some(p) };
    let province = c.documents().issue_document(c.sign(PROVINCE, &m)?).await?.into_inner();
    let _ = writeln!(
        log,
        "山东省财政厅 issued {}  {} to {} units",
        province.number,
        title(&province),
        province.main_unit_ids.len()
    );

    ack(&c, ZIBO, &province.id, log).await?;
    let mut z = draft(
        "淄财采",
        &["各区县财政局", "高新区、经开区、文昌湖区财政局", "市直各部门、单位"],
        "2022-12-20",
        unbreak(cut("为落实政府购买服务改革措施", "请贯彻执行。", 1, true)),
    );
    z.printed_by = "淄博市财政局办公室".into();
    z.printed_on = "2022-12-20".into();
    let city = forward(&c, ZIBO, &province.id, z, log).await?;

    ack(&c, BOSHAN, &city.id, log).await?;
    let b = draft(
        "博财采",
        &["区直各部门、单位", "各镇(街道)财政所", "开发区财政审计局"],
        "2022-12-22",
        unbreak(cut("为落实政府购买服务改革措施", "请遵照执行。", 0, true)),
    );
    let district = forward(&c, BOSHAN, &city.id, b, log).await?;

    // A realistic mix of what recipients do next.
    for u in ["370000.mzt", "370000.jyt", "370000.rst", "370100.czj", "370200.czj"] {
        ack(&c, u, &province.id, log).await?;
    }
    for u in ["370303.czj", "370300.gxq-czj"] {
        ack(&c, u, &city.id, log).await?;
    }
    report(&c, "370000.mzt", &province.id, "已完成政府购买服务改革重点工作进展情况报告，并报送典型案例1个。", log)
        .await?;
    report(&c, "370000.jyt", &province.id, "已报送学前教育领域政府购买服务工作进展情况。", log).await?;
    complete(&c, "370000.mzt", &province.id, log).await?;
    let m = pb::ReturnDelivery {
        request_id: new_request_id(),
        unit_id: "370000.sjt".into(),
        document_id: province.id.clone(),
        reason: "本单位不承担政府购买服务管理职责，请核实主送范围".into(),
    };
    c.deliveries().r#return(c.sign("370000.sjt", &m)?).await?;
    let _ = writeln!(log, "山东省审计厅 returned {} (本单位不承担政府购买服务管理职责)", province.number);
    let m = pb::Remind {
        request_id: new_request_id(),
        unit_id: PROVINCE.into(),
        document_id: province.id.clone(),
        recipient_unit_id: "370000.jtt".into(),
        message: "请于11月30日前报送工作进展情况".into(),
    };
    c.deliveries().remind(c.sign(PROVINCE, &m)?).await?;
    let _ = writeln!(log, "山东省财政厅 reminded 山东省交通运输厅 (催办)");

    for u in ["370304.jtj", "370304001.czs", "370304.kfq-czsjj"] {
        ack(&c, u, &district.id, log).await?;
    }
    let m = pb::StartHandling {
        request_id: new_request_id(),
        unit_id: "370304.jtj".into(),
        document_id: district.id.clone(),
        lead_office: "计划财务科".into(),
        note: String::new(),
    };
    c.deliveries().start_handling(c.sign("370304.jtj", &m)?).await?;
    let _ = writeln!(log, "淄博市博山区教育和体育局 started handling {} (计划财务科)", district.number);
    complete(&c, "370304.jtj", &district.id, log).await?;
    report(&c, "370304.kfq-czsjj", &district.id, "开发区已梳理政府购买服务指导性目录。", log).await?;

    let trace = c.trace(&province.id, 0).await?;
    Ok(DemoOutcome { province, city, district, trace })
}

fn title(d: &pb::Document) -> &str {
    d.draft.as_ref().map_or("", |d| d.title.as_str())
}

async fn ack(c: &Client, unit: &str, doc: &str, log: &mut String) -> Result<(), CliError> {
    let m = pb::Acknowledge {
        request_id: new_request_id(),
        unit_id: unit.into(),
        document_id: doc.into(),
        registration_number: String::new(),
    };
    let d = c.deliveries().acknowledge(c.sign(unit, &m)?).await?.into_inner();
    let _ = writeln!(log, "{} acknowledged {} (签收)", d.recipient_name, d.document_number);
    Ok(())
}

async fn forward(
    c: &Client,
    unit: &str,
    source: &str,
    draft: pb::DocumentDraft,
    log: &mut String,
) -> Result<pb::Document, CliError> {
    let m = pb::ForwardDocument {
        request_id: new_request_id(),
        unit_id: unit.into(),
        source_document_id: source.into(),
        draft: Some(draft),
    };
    let doc = c.documents().forward_document(c.sign(unit, &m)?).await?.into_inner();
    let _ = writeln!(
        log,
        "{} forwarded it as {}  {} to {} units",
        doc.issuer_name,
        doc.number,
        title(&doc),
        doc.main_unit_ids.len()
    );
    Ok(doc)
}

async fn report(c: &Client, unit: &str, doc: &str, text: &str, log: &mut String) -> Result<(), CliError> {
    let m = pb::SubmitReport {
        request_id: new_request_id(),
        unit_id: unit.into(),
        document_id: doc.into(),
        text: text.into(),
        attachment_sha256: vec![],
    };
    let d = c.deliveries().report(c.sign(unit, &m)?).await?.into_inner();
    let _ = writeln!(log, "{} reported on {} (报送): {text}", d.recipient_name, d.document_number);
    Ok(())
}

async fn complete(c: &Client, unit: &str, doc: &str, log: &mut String) -> Result<(), CliError> {
    let m = pb::Complete {
        request_id: new_request_id(),
        unit_id: unit.into(),
        document_id: doc.into(),
        note: String::new(),
    };
    let d = c.deliveries().complete(c.sign(unit, &m)?).await?.into_inner();
    let _ = writeln!(log, "{} completed {} (办结)", d.recipient_name, d.document_number);
    Ok(())
}

/// Refuses to replace the data of a demo that is still serving: unlinking its files would leave it running on data
/// that is gone. sled holds an exclusive lock on its database while open, so opening it here tells.
fn ensure_not_running(data: &Path) -> Result<(), CliError> {
    let db = crate::store::layout::db_dir(data);
    if !db.exists() {
        return Ok(());
    }
    // Opened as the server opens it (with the segment size its store was created with), or sled refuses.
    match crate::store::SledStore::open(&db, 1 << 20) {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::Input(format!(
            "{} holds a demo that is still running (or its database cannot be opened: {e}); stop it first, or \
             choose another --data directory",
            data.display()
        ))),
    }
}

fn prepare_dir(data: &Path) -> Result<(), CliError> {
    let io = |source| CliError::Io { path: data.display().to_string(), source };
    if data.exists() {
        let empty = std::fs::read_dir(data).map_err(io)?.next().is_none();
        if data.join(MARKER).exists() {
            ensure_not_running(data)?;
            std::fs::remove_dir_all(data).map_err(io)?;
        } else if !empty {
            return Err(CliError::Input(format!(
                "{} exists and is not a previous demo; choose another --data directory",
                data.display()
            )));
        }
    }
    std::fs::create_dir_all(data).map_err(io)?;
    std::fs::write(data.join(MARKER), b"created by gongwen demo; the next demo replaces this directory\n").map_err(io)
}

/// `gongwen demo`.
pub async fn run(data: &Path, listen: SocketAddr, exit: bool) -> Result<(), CliError> {
    // A busy port must not cost the previous demo its data: check it before anything is removed.
    drop(std::net::TcpListener::bind(listen).map_err(|e| CliError::Input(format!("cannot listen on {listen}: {e}")))?);
    prepare_dir(data)?;
    let keys = data.join("keys");
    let operator = Keystore::new(&keys).generate("operator", None)?;
    let mut cfg = ServerConfig::new(data);
    cfg.listen = listen;
    cfg.operator = Some(operator_seal(&operator));
    // Plaintext on purpose: a local demo with throwaway keys, spoken to by the commands it prints.
    cfg.tls = None;
    let running = server::start(cfg).await?;
    let addr = format!("http://{}", running.addr);
    let mut log = String::new();
    let outcome = flow(&addr, &keys, &mut log).await;
    print!("{log}");
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            running.stop().await?;
            return Err(e);
        }
    };
    println!("\n督办追踪 — the forwarding tree of {}:\n", outcome.province.number);
    print!("{}", outcome.trace.text());
    let g = format!("gongwen --server {addr} --keys {}", keys.display());
    println!(
        "\nThe server is running on {addr}; data in {}. Try, in another terminal (cargo run -q -- … for gongwen):\n",
        data.display()
    );
    for cmd in [
        format!("{g} trace 鲁财采〔2022〕14号"),
        format!("{g} not-acted 鲁财采〔2022〕14号"),
        format!("{g} show 博财采[2022]19号"),
        format!("{g} inbox --as 370304002.czs"),
        format!("{g} ack --as 370304002.czs 博财采〔2022〕19号"),
        format!("{g} delivery 鲁财采〔2022〕14号 370300.czj"),
        format!("{g} registry expand 各区县财政局 --issuer 370300.czj"),
        format!("{g} watch --as 370100.czj"),
    ] {
        println!("  {cmd}");
    }
    if exit {
        return Ok(running.stop().await?);
    }
    println!(
        "\nCtrl-C stops the server; restart it later with: gongwen serve --plaintext --data {} --keys {}",
        data.display(),
        keys.display()
    );
    shutdown_signal().await;
    running.stop().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_demo_s_directory_is_replaced_unless_its_server_still_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("demo");
        prepare_dir(&data).expect("a new directory");
        let store = crate::store::SledStore::open(&data.join("db"), 1 << 20).expect("the demo's store");
        let err = prepare_dir(&data).expect_err("its store is still open");
        assert!(err.to_string().contains("still running"), "{err}");
        assert!(data.join("db").exists(), "a running demo's data is kept");
        drop(store);
        prepare_dir(&data).expect("replaced once it has stopped");
        assert!(!data.join("db").exists());
    }
}
