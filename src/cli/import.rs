//! `gongwen import`: bringing whole chains read by [`crate::parse`] into a server as the operator. Each file is
//! imported innermost document first, so a forward can name the document it forwards.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CliError;
use super::client::Client;
use crate::domain::model::Disclosure;
use crate::parse::{self, Found, Parsed, ParsedDocument};
use crate::pb;

/// File kinds the importer reads; anything else in a directory is left alone.
const EXTENSIONS: [&str; 4] = ["txt", "text", "docx", "pdf"];

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io { path: path.display().to_string(), source })
}

fn parse_file(path: &Path) -> Result<(Vec<u8>, Parsed), CliError> {
    let bytes = read(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = parse::source::text_from_bytes(&name, &bytes).map_err(|e| CliError::Input(e.to_string()))?;
    Ok((bytes, parse::parse_text(&text)))
}

/// What happened to one file.
#[derive(Debug, Default, Serialize)]
pub struct FileOutcome {
    pub file: String,
    /// Documents created now, by number.
    pub imported: Vec<String>,
    /// Documents that were in gongwen already (this file imported before, or the same number from elsewhere).
    pub duplicates: Vec<String>,
    /// Why the file, or the rest of its chain, was not imported.
    pub failed: Option<String>,
    /// The parser's warnings.
    pub warnings: Vec<String>,
}

/// Files under the given paths: files as given, directories walked for the known extensions, in name order.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let io = |source| CliError::Io { path: p.display().to_string(), source };
            let mut entries: Vec<PathBuf> =
                std::fs::read_dir(p).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|e| e.is_dir());
            out.extend(files.into_iter().filter(|f| {
                f.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            }));
            out.extend(expand(&dirs)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// `gongwen import PATH…`: returns one outcome per file; a failed file does not stop the others.
pub async fn import(client: &Client, paths: &[PathBuf], progress: bool) -> Result<Vec<FileOutcome>, CliError> {
    let files = expand(paths)?;
    let bar = if progress && files.len() > 1 {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut outcomes = vec![];
    for path in &files {
        bar.set_message(path.display().to_string());
        let mut outcome = FileOutcome { file: path.display().to_string(), ..FileOutcome::default() };
        if let Err(e) = import_file(client, path, &mut outcome).await {
            outcome.failed = Some(super::hint_tls(e, client.server()).to_string());
        }
        outcomes.push(outcome);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(outcomes)
}

async fn import_file(client: &Client, path: &Path, out: &mut FileOutcome) -> Result<(), CliError> {
    let (bytes, parsed) = parse_file(path)?;
    out.warnings = parsed.warnings.iter().map(|w| w.message.clone()).collect();
    if parsed.documents.is_empty() {
        return Err(CliError::Input("no document found".into()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let media = parse::source::media_type(&name, &bytes);
    let source = client.upload_bytes(None, &name, media, bytes).await?.sha256;
    let mut ids: Vec<Option<String>> = vec![None; parsed.documents.len()];
    for k in (0..parsed.documents.len()).rev() {
        let doc = &parsed.documents[k];
        let number = doc.number.as_ref().map(|n| n.value.to_string()).ok_or_else(|| {
            CliError::Input(format!(
                "document [{k}] has no readable number, so it and the documents around it stop here"
            ))
        })?;
        let forwards = doc.forwards.and_then(|i| ids.get(i).cloned().flatten());
        let m = statement(client, doc, k, &source, &name, media, &ids).await?;
        debug_assert_eq!(m.forwards_document_id, forwards.unwrap_or_default());
        let env = client.sign("operator", &m)?;
        match client.documents().import_document(env).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let id = reply.document.map(|d| d.id).unwrap_or_default();
                if reply.created {
                    out.imported.push(number)
                } else {
                    out.duplicates.push(number)
                }
                ids[k] = Some(id);
            }
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                // The same document from another file: link to it rather than import it twice.
                ids[k] = Some(client.resolve(&number).await?);
                out.duplicates.push(number);
            }
            Err(s) => return Err(CliError::Input(format!("[{k}] {number}: {}", s.message()))),
        }
    }
    Ok(())
}

fn disclosure(d: &ParsedDocument) -> pb::Disclosure {
    match d.disclosure.as_ref().map(|x| x.value) {
        Some(Disclosure::Public) => pb::Disclosure::Public,
        Some(Disclosure::OnRequest) => pb::Disclosure::OnRequest,
        Some(Disclosure::NotPublic) => pb::Disclosure::NotPublic,
        None => pb::Disclosure::Unspecified,
    }
}

fn genre(title: &str) -> pb::Genre {
    use pb::Genre as G;
    let endings = [
        ("通知", G::Notice),
        ("通报", G::Bulletin),
        ("意见", G::Opinion),
        ("决定", G::Decision),
        ("决议", G::Resolution),
        ("公报", G::Communique),
        ("公告", G::Announcement),
        ("通告", G::PublicNotice),
        ("报告", G::Report),
        ("请示", G::Request),
        ("批复", G::Reply),
        ("议案", G::Motion),
        ("函", G::Letter),
        ("纪要", G::Minutes),
        ("令", G::Order),
    ];
    endings.iter().find(|(e, _)| title.ends_with(e)).map_or(G::Notice, |(_, g)| *g)
}

/// The import statement for document `k` of a file; `ids` holds the ids of the documents after it in the file
/// (imported first), so attachments that are documents and the forwarded document can be linked.
async fn statement(
    client: &Client,
    d: &ParsedDocument,
    k: usize,
    source: &str,
    name: &str,
    media: &str,
    ids: &[Option<String>],
) -> Result<pb::ImportDocument, CliError> {
    let text = |x: &Option<Found<String>>| x.as_ref().map(|f| f.value.clone()).unwrap_or_default();
    let date = |x: &Option<Found<chrono::NaiveDate>>| x.as_ref().map(|f| f.value.to_string());
    let id_of = |i: Option<usize>| i.and_then(|i| ids.get(i).cloned().flatten());
    let title = text(&d.title);
    let mut attachments = vec![];
    for a in &d.attachments {
        let mut item = pb::ImportedAttachment { title: a.value.title.clone(), ..Default::default() };
        if let Some(id) = id_of(a.value.document) {
            item.document_id = id;
        } else if let Some(annex) = d.annexes.iter().find(|t| t.value.ordinal.unwrap_or(1) == a.value.ordinal) {
            let title = annex.value.title.clone().unwrap_or_else(|| a.value.title.clone());
            let up =
                client.upload_bytes(None, &title, "text/plain; charset=utf-8", annex.value.text.clone().into_bytes());
            item.sha256 = up.await?.sha256;
            item.media_type = "text/plain; charset=utf-8".into();
        }
        attachments.push(item);
    }
    Ok(pb::ImportDocument {
        request_id: format!("import-{}-{k}", source.get(..16).unwrap_or(source)),
        issuer_name: text(&d.issuer),
        number: d.number.as_ref().map(|n| n.value.to_string()).unwrap_or_default(),
        draft: Some(pb::DocumentDraft {
            genre: genre(&title) as i32,
            title,
            signer: d.signers.as_ref().map(|s| s.value.join("、")).unwrap_or_default(),
            body: text(&d.body),
            // A 成文日期 that is not in the source is left empty; the server dates the document by its printing
            // and records that it did (`dated_from_printing`).
            dated: date(&d.dated).unwrap_or_default(),
            printed_by: text(&d.printed_by),
            printed_on: date(&d.printed_on).unwrap_or_default(),
            disclosure: disclosure(d) as i32,
            contact: d.contact.as_ref().map(|c| c.value.text.clone()).unwrap_or_default(),
            note: text(&d.note),
            ..Default::default()
        }),
        main_written: d.main_recipients.as_ref().map(|r| r.value.groups.clone()).unwrap_or_default(),
        cc_written: d.cc.as_ref().map(|r| r.value.groups.clone()).unwrap_or_default(),
        forwards_document_id: id_of(d.forwards).unwrap_or_default(),
        attachments,
        source_sha256: source.to_owned(),
        source_name: name.to_owned(),
        position: u32::try_from(k).unwrap_or(u32::MAX),
        dated_from_printing: d.dated.is_none() && d.printed_on.is_some(),
        source_media_type: media.to_owned(),
    })
}

/// The summary printed at the end of an import.
pub fn summary(outcomes: &[FileOutcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        let status = match &o.failed {
            Some(reason) => format!("FAILED: {reason}"),
            None => "ok".into(),
        };
        let _ = writeln!(s, "{}: {status}", o.file);
        for n in &o.imported {
            let _ = writeln!(s, "  imported   {n}");
        }
        for n in &o.duplicates {
            let _ = writeln!(s, "  duplicate  {n} (already in gongwen; nothing new)");
        }
        for w in &o.warnings {
            let _ = writeln!(s, "  warning    {w}");
        }
    }
    let count = |f: fn(&FileOutcome) -> usize| outcomes.iter().map(f).sum::<usize>();
    let _ = writeln!(
        s,
        "\n{} file(s): {} document(s) imported, {} skipped as duplicates, {} file(s) failed",
        outcomes.len(),
        count(|o| o.imported.len()),
        count(|o| o.duplicates.len()),
        count(|o| usize::from(o.failed.is_some()))
    );
    s
}
