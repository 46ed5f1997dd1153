//! File bytes to document text: UTF-8 or GB18030 plain text, and the body text of a .docx. Pure on bytes; the
//! caller reads the file.
use std::io::{Cursor, Read};

use quick_xml::events::Event;

/// Why a file's text could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: neither UTF-8 nor GB18030 text")]
    Encoding(String),
    #[error("{name}: not a readable .docx file: {reason}")]
    Docx { name: String, reason: String },
    #[error("{0}: PDF files are not read yet; extract the text first (e.g. pdftotext -layout)")]
    Pdf(String),
}

/// A .docx body is seldom above a few MB; the cap stops a zip bomb.
const MAX_DOCX_XML: u64 = 64 * 1024 * 1024;

/// The text of a file, by its name's extension (.docx, .pdf) or else as UTF-8 / GB18030 text.
pub fn text_from_bytes(name: &str, bytes: &[u8]) -> Result<String, SourceError> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "docx" => docx_text(name, bytes),
        "pdf" => Err(SourceError::Pdf(name.to_owned())),
        _ if bytes.starts_with(b"PK\x03\x04") => docx_text(name, bytes),
        _ if bytes.starts_with(b"%PDF") => Err(SourceError::Pdf(name.to_owned())),
        _ => plain_text(name, bytes),
    }
}

/// UTF-8 (with or without a BOM), else GB18030 (which covers GBK and GB2312), else an error: never a guess
/// with replacement characters.
pub fn plain_text(name: &str, bytes: &[u8]) -> Result<String, SourceError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
        .ok_or_else(|| SourceError::Encoding(name.to_owned()))
}

/// The paragraphs of `word/document.xml`, one per line; tabs and breaks kept.
fn docx_text(name: &str, bytes: &[u8]) -> Result<String, SourceError> {
    let bad = |reason: String| SourceError::Docx { name: name.to_owned(), reason };
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let entry = zip.by_name("word/document.xml").map_err(|e| bad(format!("word/document.xml: {e}")))?;
    let mut xml = String::new();
    entry.take(MAX_DOCX_XML).read_to_string(&mut xml).map_err(|e| bad(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Start(e) if e.name().as_ref() == b"w:t" => in_text = true,
            Event::End(e) if e.name().as_ref() == b"w:t" => in_text = false,
            Event::End(e) if e.name().as_ref() == b"w:p" => out.push('\n'),
            Event::Empty(e) if e.name().as_ref() == b"w:tab" => out.push('\t'),
            Event::Empty(e) if e.name().as_ref() == b"w:br" => out.push('\n'),
            Event::Text(t) if in_text => out.push_str(&t.unescape().map_err(|e| bad(e.to_string()))?),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bom_and_gb18030_are_read_and_garbage_is_refused() {
        let text = "淄博市财政局文件\n淄财采〔2022〕20号\n";
        assert_eq!(text_from_bytes("a.txt", text.as_bytes()).expect("utf8"), text);
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(text_from_bytes("a.txt", &bom).expect("bom"), text);
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        assert_ne!(gb.as_ref(), text.as_bytes());
        assert_eq!(text_from_bytes("a.txt", &gb).expect("gb18030"), text);
        assert!(matches!(text_from_bytes("a.txt", &[0xff, 0xff, 0xff]), Err(SourceError::Encoding(_))));
        assert!(matches!(text_from_bytes("a.docx", b"not a zip"), Err(SourceError::Docx { .. })));
        assert!(matches!(text_from_bytes("a.pdf", b"%PDF-1.4"), Err(SourceError::Pdf(_))));
    }
}
