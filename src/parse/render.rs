//! Prints a document's fields as GB/T 9704-style text: the inverse of the parser, used to test it (a document
//! printed from fields must parse back to the same fields) and to make fixtures.
use chrono::{Datelike, NaiveDate};

/// The fields a printed document carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub issuer: String,
    pub number: String,
    pub title: String,
    pub main_recipients: Vec<String>,
    pub body: Vec<String>,
    pub contact: Option<String>,
    pub attachments: Vec<String>,
    pub dated: Option<NaiveDate>,
    pub disclosure: Option<String>,
    pub cc: Vec<String>,
    pub printed_by: Option<String>,
    pub printed_on: Option<NaiveDate>,
}

/// `2022年8月16日`.
pub fn date(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// The document as text, blank lines between elements as in extracted PDFs.
pub fn render(f: &Fields) -> String {
    let mut parts: Vec<String> = vec![format!("{}文件", f.issuer), f.number.clone(), f.title.clone()];
    parts.push(format!("{}：", f.main_recipients.join("，")));
    parts.extend(f.body.iter().cloned());
    if let Some(c) = &f.contact {
        parts.push(format!("联系人及电话：{c}。"));
    }
    match f.attachments.as_slice() {
        [] => {}
        [one] => parts.push(format!("附件：{one}")),
        many => {
            for (i, a) in many.iter().enumerate() {
                parts.push(if i == 0 { format!("附件：1. {a}") } else { format!("      {}. {a}", i + 1) });
            }
        }
    }
    if let Some(d) = f.dated {
        parts.push(f.issuer.clone());
        parts.push(date(d));
    }
    if let Some(d) = &f.disclosure {
        parts.push(format!("信息公开选项：{d}"));
    }
    if !f.cc.is_empty() {
        parts.push(format!("抄送：{}。", f.cc.join("，")));
    }
    if let (Some(by), Some(on)) = (&f.printed_by, f.printed_on) {
        parts.push(by.clone());
        parts.push(format!("{}印发", date(on)));
    }
    let mut out = parts.join("\n\n");
    out.push('\n');
    out
}
