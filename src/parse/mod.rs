//! Reading official documents laid out by GB/T 9704-2012 from their text (解析): the elements of each document,
//! the chain of documents forwarded inside one another, and warnings for whatever could not be read. Pure: text in,
//! structure out, no I/O; [`source`] turns file bytes (UTF-8, GB18030, .docx, PDF) into that text.
//!
//! Text extracted from PDFs stacks a forwarding chain: the outer document, then the document it forwards (its
//! attachment), and so on; the 版记 blocks (disclosure, cc, printing office and date) of the outer documents come
//! after the innermost document, innermost first. The parser follows that layout.
use serde::Serialize;

mod colophon;
mod document;
pub mod render;
pub mod source;
pub mod text;

pub use colophon::Colophon;

/// An element and where it stands in the source: 1-based line numbers, first and last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found<T> {
    pub value: T,
    pub first_line: usize,
    pub last_line: usize,
}

impl<T> Found<T> {
    fn at(value: T, first_line: usize, last_line: usize) -> Found<T> {
        Found { value, first_line, last_line }
    }
}

/// One item of an attachment list (附件说明).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentItem {
    /// 1, 2, …; 1 for a single unnumbered attachment.
    pub ordinal: u32,
    /// The title as listed.
    pub title: String,
}

/// An attachment printed after the document (附件 heading, title, content), other than a nested document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachedText {
    /// The ordinal in its heading (附件1), 1 when the heading has none.
    pub ordinal: u32,
    /// Its title line.
    pub title: String,
    /// Its content, lines joined with newlines.
    pub text: String,
}

/// One document found in the text. Every element is optional: what could not be found is `None` (or empty) and
/// named in the warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParsedDocument {
    /// 0 for the outermost document, 1 for the one it forwards, and so on.
    pub depth: usize,
    /// Index (in [`Parsed::documents`]) of the document this one forwards or attaches.
    pub forwards: Option<usize>,
    /// First and last source lines of the document's own part.
    pub lines: (usize, usize),
    /// The banner (版头) as printed, e.g. 淄博市财政局文件.
    pub banner: Option<Found<String>>,
    /// The issuer's name: from the banner, else from the signature.
    pub issuer: Option<Found<String>>,
    /// 发文字号 in its standard form (〔〕 brackets, half-width digits).
    pub number: Option<Found<String>>,
    /// 签发人.
    pub signer: Option<Found<String>>,
    /// 标题, with PDF line breaks and stray spaces removed.
    pub title: Option<Found<String>>,
    /// 主送 as written, split at ，and ；(a 、 inside a group name such as 省直各部门、单位 is kept).
    pub main_recipients: Option<Found<Vec<String>>>,
    /// 正文, paragraphs joined with newlines, page breaks inside a paragraph mended.
    pub body: Option<Found<String>>,
    /// 附件说明.
    pub attachments: Vec<Found<AttachmentItem>>,
    /// The issuer's signature (发文机关署名) above the date; several lines for a joint document.
    pub signature: Option<Found<Vec<String>>>,
    /// 成文日期.
    pub dated: Option<Found<chrono::NaiveDate>>,
    /// 附注 (without its parentheses).
    pub note: Option<Found<String>>,
    /// 联系人及电话.
    pub contact: Option<Found<String>>,
    /// Attachments printed after the document, other than nested documents.
    pub attached: Vec<Found<AttachedText>>,
    /// 信息公开选项: 主动公开, 依申请公开 or 不予公开.
    pub disclosure: Option<Found<String>>,
    /// 抄送 as written.
    pub cc: Option<Found<Vec<String>>>,
    /// 印发机关.
    pub printed_by: Option<Found<String>>,
    /// 印发日期.
    pub printed_on: Option<Found<chrono::NaiveDate>>,
}

/// Something the parser could not read, or a check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Source line, when one is to blame.
    pub line: Option<usize>,
    /// Index of the document concerned, when one is.
    pub document: Option<usize>,
    /// What is wrong, in plain words.
    pub message: String,
}

/// What a text holds: its documents, outermost first, and the warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    pub documents: Vec<ParsedDocument>,
    pub warnings: Vec<Warning>,
}

/// Parses the text of one file.
pub fn parse_text(text: &str) -> Parsed {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Parsed::default();
    let starts = document::starts(&lines);
    if starts.is_empty() {
        out.warnings.push(Warning { line: None, document: None, message: "the text is empty".into() });
        return out;
    }
    let (blocks, claimed) = colophon::find(&lines);
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        let (doc, warnings) = document::parse(&lines, start, end, &claimed);
        out.documents.push(ParsedDocument { depth: k, forwards: (k + 1 < starts.len()).then_some(k + 1), ..doc });
        out.warnings.extend(warnings.into_iter().map(|(line, message)| Warning { line, document: Some(k), message }));
    }
    colophon::assign(&blocks, &starts, &mut out);
    check_chain(&mut out);
    for (k, d) in out.documents.iter().enumerate() {
        missing(&mut out.warnings, k, d);
    }
    out
}

fn missing(warnings: &mut Vec<Warning>, k: usize, d: &ParsedDocument) {
    let mut say = |what: &str| {
        warnings.push(Warning { line: Some(d.lines.0), document: Some(k), message: format!("no {what} found") })
    };
    if d.number.is_none() {
        say("document number (发文字号)");
    }
    if d.title.is_none() {
        say("title (标题)");
    }
    if d.issuer.is_none() {
        say("issuer (neither a banner nor a signature)");
    }
    if d.dated.is_none() && d.printed_on.is_none() {
        say("date (neither 成文日期 nor 印发日期)");
    }
}

/// Each nested document is the attachment of the one before it: the outer attachment list should name it, and a
/// forward's title should be the one the forwarding rule derives from it.
fn check_chain(out: &mut Parsed) {
    let mut warnings = vec![];
    for (k, outer) in out.documents.iter().enumerate() {
        let Some(inner) = outer.forwards.and_then(|i| out.documents.get(i)) else { continue };
        let inner_title = inner.title.as_ref().map(|t| t.value.as_str()).unwrap_or_default();
        let inner_number = inner.number.as_ref().map(|n| n.value.as_str()).unwrap_or_default();
        let named = outer.attachments.iter().any(|a| {
            let t = text::squeeze(&a.value.title).replace(['〈', '〉'], "").replace(['《', '》'], "");
            let plain = inner_title.replace(['〈', '〉', '《', '》'], "");
            (!inner_number.is_empty() && t.contains(inner_number)) || (!plain.is_empty() && t.contains(&plain))
        });
        if !named {
            warnings.push(Warning {
                line: Some(outer.lines.0),
                document: Some(k),
                message: format!(
                    "the attachment list does not name the attached document {inner_number} {inner_title}"
                ),
            });
        }
        let (Some(title), Some(issuer)) = (&outer.title, &inner.issuer) else { continue };
        if title.value.starts_with("关于转发") {
            let derived = crate::domain::title::forwarding_title(inner_title, &issuer.value);
            if derived != title.value {
                warnings.push(Warning {
                    line: Some(title.first_line),
                    document: Some(k),
                    message: format!("the title {} is not the forwarding title {derived}", title.value),
                });
            }
        }
    }
    out.warnings.extend(warnings);
}

#[cfg(test)]
mod tests;
