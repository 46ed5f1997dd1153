//! Reading official documents laid out by GB/T 9704-2012 (党政机关公文格式) from their text (解析).
//!
//! Pure: text in, structure out, no I/O, no panics on any input. [`source`] turns file bytes (UTF-8, GB18030,
//! .docx, PDF) into text; [`parse_text`] finds the documents in it, every element with its source lines, the chain
//! of documents forwarded inside one another, and warnings for whatever could not be read; [`render`] prints the
//! structure back as text.
//!
//! The layout followed (GB/T 9704-2012 §7): 版头 (copy number, classification, urgency, issuer banner, document
//! number with the signer), 主体 (title, main recipients, body, attachment list, signature, date, note, then the
//! attachments themselves on new pages), 版记 (cc, printing office and date; Shandong also prints the disclosure
//! option there). A forwarding document's attachment is the forwarded document, printed whole with its own 版记,
//! so in a chain the 版记 blocks follow the innermost document, innermost first.
use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::model::Disclosure;
use crate::domain::number::DocNumber;

mod body;
mod chain;
mod checks;
mod classify;
mod dates;
mod head;
mod lines;
pub mod render;
pub mod source;
#[cfg(test)]
mod tests;
mod trailer;

/// An element as found, and where: the first and last source line it was read from (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found<T> {
    pub value: T,
    pub lines: (usize, usize),
}

impl<T> Found<T> {
    pub(crate) fn new(value: T, first: usize, last: usize) -> Found<T> {
        Found { value, lines: (first, last.max(first)) }
    }
}

/// A recipient list (主送 or 抄送) as written, without its closing ：or 。 and without PDF stray spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipients {
    /// The whole list, e.g. 各市财政局，省直各部门、单位.
    pub written: String,
    /// Split at every ，、；: 各市财政局 / 省直各部门 / 单位. A separator inside brackets does not split, so
    /// 各县（市、区）财政局 stays whole.
    pub items: Vec<String>,
    /// Split at ，and ；only, which keeps group names such as 省直各部门、单位 whole (the registry's groups are
    /// named so).
    pub groups: Vec<String>,
}

impl Recipients {
    /// A list as written (主送 or 抄送 line without its label), split as the parser splits it.
    pub fn from_written(text: &str) -> Recipients {
        head::recipients(text)
    }
}

/// One entry of the attachment list (附件说明).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentItem {
    /// 1, 2, … as printed; 1 for a single unnumbered attachment.
    pub ordinal: u32,
    /// The title as listed, without a document number in brackets after it.
    pub title: String,
    /// The document number printed after the title, as in 《…》（淄财采〔2022〕20号）.
    pub number: Option<DocNumber>,
    /// Index of the nested document this entry names, when it is in the text.
    pub document: Option<usize>,
}

/// An attachment printed after the document (附件 heading, title, content) that is not itself a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annex {
    /// The ordinal in the heading (附件2), when it has one.
    pub ordinal: Option<u32>,
    /// The attachment's title line.
    pub title: Option<String>,
    /// Its content, one source line per line (tables keep their tabs).
    pub text: String,
}

/// 联系人及电话.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// What follows the label, e.g. 王高文 0531-51769834.
    pub text: String,
    /// The person, when one can be told apart.
    pub name: Option<String>,
    /// The phone number, when there is one.
    pub phone: Option<String>,
}

impl Contact {
    /// A contact from the text after its label, e.g. 王高文 0531-51769834.
    pub fn from_text(text: &str) -> Contact {
        body::contact_from_text(text)
    }
}

/// One document found in the text. What could not be found is `None` or empty, and the warnings say why when it
/// should have been there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParsedDocument {
    /// 0 for an outermost document, 1 for the document it forwards, and so on.
    pub depth: usize,
    /// Index (in [`Parsed::documents`]) of the document this one forwards: the one printed as its attachment.
    pub forwards: Option<usize>,
    /// Index of the document this one is printed inside, as its attachment.
    pub attached_to: Option<usize>,
    /// First and last source line of this document, its attachments included.
    pub lines: (usize, usize),
    /// 份号.
    pub copy_number: Option<Found<String>>,
    /// 密级和保密期限, as printed (秘密★1年).
    pub classification: Option<Found<String>>,
    /// 紧急程度, as printed (特急, 加急).
    pub urgency: Option<Found<String>>,
    /// 发文机关标志 as printed, e.g. 淄博市财政局文件.
    pub banner: Option<Found<String>>,
    /// The issuer's name: from the banner, else from the signature (a warning says so).
    pub issuer: Option<Found<String>>,
    /// 发文字号.
    pub number: Option<Found<DocNumber>>,
    /// 签发人, one name per entry.
    pub signers: Option<Found<Vec<String>>>,
    /// 标题, with PDF line breaks and stray spaces removed.
    pub title: Option<Found<String>>,
    /// 主送机关.
    pub main_recipients: Option<Found<Recipients>>,
    /// 正文: one paragraph per line; lines a page break split are joined again.
    pub body: Option<Found<String>>,
    /// 附件说明.
    pub attachments: Vec<Found<AttachmentItem>>,
    /// 发文机关署名: the signing unit(s) above the date, one per entry.
    pub signature: Vec<Found<String>>,
    /// 成文日期.
    pub dated: Option<Found<NaiveDate>>,
    /// 附注, without its brackets.
    pub note: Option<Found<String>>,
    /// 联系人及电话.
    pub contact: Option<Found<Contact>>,
    /// Attachments printed after the document that are not documents (a forwarded document is in `forwards`).
    pub annexes: Vec<Found<Annex>>,
    /// 主题词, in documents laid out by GB/T 9704-1999 (the 2012 standard dropped it).
    pub keywords: Option<Found<Vec<String>>>,
    /// 信息公开选项.
    pub disclosure: Option<Found<Disclosure>>,
    /// 抄送机关.
    pub cc: Option<Found<Recipients>>,
    /// 印发机关.
    pub printed_by: Option<Found<String>>,
    /// 印发日期.
    pub printed_on: Option<Found<NaiveDate>>,
}

/// Something that could not be read, or a check that failed, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The source line concerned, when there is one.
    pub line: Option<usize>,
    /// Index of the document concerned, when there is one.
    pub document: Option<usize>,
    pub message: String,
}

/// The documents in a text, outermost first (a forwarding document before the one it forwards), and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    pub documents: Vec<ParsedDocument>,
    pub warnings: Vec<Warning>,
}

impl Parsed {
    /// The chain starting at document `first`, following `forwards`: outermost first.
    pub fn chain(&self, first: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut seen = vec![false; self.documents.len()];
        let mut at = Some(first);
        while let Some(i) = at.filter(|i| seen.get(*i) == Some(&false)) {
            seen[i] = true;
            out.push(i);
            at = self.documents[i].forwards;
        }
        out
    }
}

/// Reads every document in `text`. Never fails: what cannot be read is reported in [`Parsed::warnings`].
pub fn parse_text(text: &str) -> Parsed {
    let lines = lines::split(text);
    chain::build(&lines)
}
