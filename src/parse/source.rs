//! File bytes to text for the parser: UTF-8 (with or without BOM), UTF-16 with BOM, GB18030 (which includes GBK
//! and GB2312), .docx (the paragraphs of word/document.xml), and PDF text layers (with the `pdf` feature). Pure on
//! bytes: the caller reads the file.
use std::io::Read;

use quick_xml::events::Event;

/// Why a file's text could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("not UTF-8, UTF-16 or GB18030 text")]
    Undecodable,
    #[error("not a readable .docx file: {0}")]
    Docx(String),
    #[error("no text could be read from the PDF: {0}")]
    Pdf(String),
    #[error("{0}")]
    Unsupported(String),
}

/// The largest word/document.xml read, decompressed: far above any real document, low enough to stop a zip bomb.
const MAX_XML_BYTES: u64 = 64 << 20;

/// What a source file is, told by its first bytes, else its name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pdf,
    Docx,
    OldWord,
    Text,
}

fn kind(file_name: &str, bytes: &[u8]) -> Kind {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if bytes.starts_with(b"%PDF") || ext == "pdf" {
        Kind::Pdf
    } else if bytes.starts_with(b"PK\x03\x04") || ext == "docx" {
        Kind::Docx
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) || ext == "doc" || ext == "wps" {
        Kind::OldWord
    } else {
        Kind::Text
    }
}

/// The text of a file, by its name's extension and its first bytes.
pub fn text_from_bytes(file_name: &str, bytes: &[u8]) -> Result<String, SourceError> {
    match kind(file_name, bytes) {
        Kind::Pdf => pdf_text(bytes),
        Kind::Docx => docx_text(bytes),
        Kind::OldWord => {
            Err(SourceError::Unsupported("old binary Word (.doc/.wps) files cannot be read; save as .docx".into()))
        }
        Kind::Text => plain_text(bytes),
    }
}

/// The media type to store a source file under, told as [`text_from_bytes`] tells how to read it. Plain text
/// names the encoding the bytes are in, since they are stored as they came.
pub fn media_type(file_name: &str, bytes: &[u8]) -> &'static str {
    match kind(file_name, bytes) {
        Kind::Pdf => "application/pdf",
        Kind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Kind::OldWord => "application/msword",
        Kind::Text if std::str::from_utf8(bytes).is_ok() => "text/plain; charset=utf-8",
        Kind::Text if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") => "text/plain; charset=utf-16",
        Kind::Text => "text/plain; charset=gb18030",
    }
}

/// UTF-8 first (a BOM is dropped), then UTF-16 by its BOM, then GB18030; never a lossy decode, so that a file in
/// another encoding is refused rather than read as garbage.
pub fn plain_text(bytes: &[u8]) -> Result<String, SourceError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    for (bom, encoding) in [(&b"\xFF\xFE"[..], encoding_rs::UTF_16LE), (&b"\xFE\xFF"[..], encoding_rs::UTF_16BE)] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return encoding
                .decode_without_bom_handling_and_without_replacement(rest)
                .map(|t| t.into_owned())
                .ok_or(SourceError::Undecodable);
        }
    }
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|t| t.into_owned())
        .ok_or(SourceError::Undecodable)
}

/// The body of a .docx: one line per paragraph (w:p), tabs and line breaks kept, table cells set apart by tabs
/// and rows by line breaks, as the PDF text of a table reads.
pub fn docx_text(bytes: &[u8]) -> Result<String, SourceError> {
    let bad = |e: &dyn std::fmt::Display| SourceError::Docx(e.to_string());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let entry = zip.by_name("word/document.xml").map_err(|e| bad(&e))?;
    let mut xml = String::new();
    entry.take(MAX_XML_BYTES).read_to_string(&mut xml).map_err(|e| bad(&e))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) if e.local_name().as_ref() == "t" => in_text = true,
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => out.push('\n'),
                "tc" => {
                    // The cell's paragraphs each ended a line; within a row, cells are set apart by a tab.
                    if out.ends_with('\n') {
                        out.pop();
                    }
                    out.push('\t');
                }
                "tr" => {
                    if out.ends_with('\t') {
                        out.pop();
                    }
                    out.push('\n');
                }
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => out.push('\t'),
                "br" | "cr" => out.push('\n'),
                "p" => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    out.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(feature = "pdf")]
pub fn pdf_text(bytes: &[u8]) -> Result<String, SourceError> {
    // pdf-extract panics on some malformed files; a panic is turned into an error rather than ending the caller.
    let result = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    match result {
        Ok(Ok(text)) if text.trim().is_empty() => {
            Err(SourceError::Pdf("it has no text layer (a scan?); it needs OCR first".into()))
        }
        // Page breaks come out as form feeds; the parser wants lines.
        Ok(Ok(text)) => Ok(text.replace('\u{c}', "\n")),
        Ok(Err(e)) => Err(SourceError::Pdf(e.to_string())),
        Err(_) => Err(SourceError::Pdf("the PDF reader failed on this file".into())),
    }
}

#[cfg(not(feature = "pdf"))]
pub fn pdf_text(_bytes: &[u8]) -> Result<String, SourceError> {
    Err(SourceError::Unsupported("this build has no PDF support (the `pdf` feature)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_source_kind() {
        let utf8 = "淄博市财政局文件\n";
        assert_eq!(media_type("a.pdf", b"%PDF-1.4\n"), "application/pdf");
        assert_eq!(media_type("scan", b"%PDF-1.7\n"), "application/pdf", "by its first bytes");
        assert_eq!(
            media_type("a.docx", b"PK\x03\x04"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(media_type("a.txt", utf8.as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(media_type("a.txt", &encoding_rs::GB18030.encode(utf8).0), "text/plain; charset=gb18030");
        assert_eq!(media_type("a.txt", b"\xFF\xFE\x6e\x6d"), "text/plain; charset=utf-16");
        assert_eq!(media_type("a.doc", b"\xD0\xCF\x11\xE0"), "application/msword");
    }

    #[test]
    fn encodings() {
        let text = "淄博市财政局文件\n淄财采〔2022〕20号\n";
        assert_eq!(plain_text(text.as_bytes()).ok().as_deref(), Some(text));
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(plain_text(&bom).ok().as_deref(), Some(text));
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        assert_ne!(gb.as_ref(), text.as_bytes());
        assert_eq!(text_from_bytes("a.txt", &gb).ok().as_deref(), Some(text));
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(plain_text(&utf16).ok().as_deref(), Some(text));
    }

    #[test]
    fn garbage_is_refused_not_guessed() {
        assert!(matches!(plain_text(&[0x81, 0x20, 0xFF]), Err(SourceError::Undecodable)));
        assert!(matches!(text_from_bytes("a.docx", b"PK\x03\x04junk"), Err(SourceError::Docx(_))));
        assert!(matches!(text_from_bytes("a.doc", &[0xD0, 0xCF, 0x11, 0xE0]), Err(SourceError::Unsupported(_))));
    }
}
