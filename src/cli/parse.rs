//! `gongwen parse FILE… [--json]`: the structure of documents held as text, Word or PDF files, read locally
//! without a server. Exits non-zero only when a file cannot be read or decoded; what the parser could not make
//! out is printed as warnings.
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::CliError;
use crate::parse::render::disclosure_text;
use crate::parse::source::text_from_bytes;
use crate::parse::{Found, Parsed, ParsedDocument, parse_text};

#[derive(Serialize)]
struct FileOut<'a> {
    file: String,
    #[serde(flatten)]
    parsed: &'a Parsed,
}

pub fn run(files: &[PathBuf], json: bool) -> Result<(), CliError> {
    let mut done = Vec::new();
    let mut failed = 0;
    for path in files {
        let read = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| text_from_bytes(&path.to_string_lossy(), &bytes).map_err(|e| e.to_string()));
        match read {
            Ok(text) => done.push((path.display().to_string(), parse_text(&text))),
            Err(e) => {
                eprintln!("gongwen: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    if json {
        let out: Vec<FileOut> = done.iter().map(|(file, parsed)| FileOut { file: file.clone(), parsed }).collect();
        let text = serde_json::to_string_pretty(&out).map_err(|e| CliError::Input(e.to_string()))?;
        println!("{text}");
    } else {
        for (file, parsed) in &done {
            print!("{}", describe(file, parsed));
        }
    }
    if failed > 0 {
        return Err(CliError::Input(format!("{failed} of {} files could not be read", files.len())));
    }
    Ok(())
}

fn at<T>(f: &Found<T>) -> String {
    match f.lines {
        (a, b) if a == b => format!("L{a}"),
        (a, b) => format!("L{a}–{b}"),
    }
}

/// The structure for a person: per document its elements with their lines, then the chains and the warnings.
pub fn describe(file: &str, parsed: &Parsed) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{file}: {} document(s)", parsed.documents.len());
    for (d, doc) in parsed.documents.iter().enumerate() {
        if doc.attached_to.is_none() && doc.forwards.is_some() {
            let chain: Vec<String> = parsed.chain(d).iter().map(|i| label(&parsed.documents[*i], *i)).collect();
            let _ = writeln!(s, "chain: {}", chain.join(" → "));
        }
    }
    for (d, doc) in parsed.documents.iter().enumerate() {
        let _ = write!(s, "\n[{d}] {} (depth {}, lines {}–{})", label(doc, d), doc.depth, doc.lines.0, doc.lines.1);
        if let Some(f) = doc.forwards {
            let _ = write!(s, ", forwards [{f}]");
        }
        if let Some(p) = doc.attached_to {
            let _ = write!(s, ", attached to [{p}]");
        }
        s.push('\n');
        for (name, place, value) in elements(doc) {
            let _ = writeln!(s, "  {name:<16}{place:<10}{value}");
        }
    }
    if !parsed.warnings.is_empty() {
        let _ = writeln!(s, "\nwarnings:");
        for w in &parsed.warnings {
            let line = w.line.map(|l| format!("L{l} ")).unwrap_or_default();
            let _ = writeln!(s, "  {line}{}", w.message);
        }
    }
    s
}

fn label(doc: &ParsedDocument, d: usize) -> String {
    doc.number.as_ref().map_or(format!("document {d}"), |n| n.value.to_string())
}

fn elements(doc: &ParsedDocument) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut add = |name: &str, place: String, value: String| out.push((name.to_owned(), place, value));
    for (name, f) in [("copy number", &doc.copy_number), ("classification", &doc.classification)] {
        if let Some(f) = f {
            add(name, at(f), f.value.clone());
        }
    }
    for (name, f) in [("urgency", &doc.urgency), ("banner", &doc.banner), ("issuer", &doc.issuer)] {
        if let Some(f) = f {
            add(name, at(f), f.value.replace('\n', " / "));
        }
    }
    if let Some(f) = &doc.number {
        add("number", at(f), f.value.to_string());
    }
    if let Some(f) = &doc.signers {
        add("signer", at(f), f.value.join("、"));
    }
    if let Some(f) = &doc.title {
        add("title", at(f), f.value.clone());
    }
    if let Some(f) = &doc.main_recipients {
        add("main recipients", at(f), f.value.written.clone());
    }
    if let Some(f) = &doc.body {
        let start: String = f.value.chars().take(24).collect();
        let summary =
            format!("{} paragraph(s), {} characters: {start}…", f.value.lines().count(), f.value.chars().count());
        add("body", at(f), summary);
    }
    if let Some(f) = &doc.contact {
        add("contact", at(f), f.value.text.clone());
    }
    for f in &doc.attachments {
        let a = &f.value;
        let number = a.number.as_ref().map(|n| format!("（{n}）")).unwrap_or_default();
        let link = a.document.map(|d| format!(" → [{d}]")).unwrap_or_default();
        add(&format!("attachment {}", a.ordinal), at(f), format!("{}{number}{link}", a.title));
    }
    for f in &doc.signature {
        add("signature", at(f), f.value.clone());
    }
    if let Some(f) = &doc.dated {
        add("dated", at(f), f.value.to_string());
    }
    if let Some(f) = &doc.note {
        add("note", at(f), f.value.clone());
    }
    for f in &doc.annexes {
        let a = &f.value;
        let name = a.ordinal.map_or("annex".to_owned(), |n| format!("annex {n}"));
        let rows = a.text.lines().count();
        add(&name, at(f), format!("{} ({rows} line(s))", a.title.clone().unwrap_or_default()));
    }
    if let Some(f) = &doc.keywords {
        add("subject words", at(f), f.value.join(" "));
    }
    if let Some(f) = &doc.disclosure {
        add("disclosure", at(f), disclosure_text(f.value).to_owned());
    }
    if let Some(f) = &doc.cc {
        add("cc", at(f), f.value.written.clone());
    }
    if let Some(f) = &doc.printed_by {
        add("printed by", at(f), f.value.clone());
    }
    if let Some(f) = &doc.printed_on {
        add("printed on", at(f), f.value.to_string());
    }
    out
}
