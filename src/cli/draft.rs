//! Draft files: what `gongwen issue` and `gongwen forward` read. TOML mirroring `DocumentDraft`, with friendly
//! forms for people writing it by hand:
//!
//! ```toml
//! prefix = "淄财采"
//! year = 2022
//! title = "…"                 # leave out in a forward to have it derived
//! genre = "通知"
//! main = ["各区县财政局", "unit:370300.gxq-czj"]   # "unit:" marks a unit id; anything else is a group
//! cc = []
//! body_file = "body.txt"       # or body = "…"
//! attachments = [{ file = "table.txt", title = "联系点名单" }]
//! dated = "2022-12-20"
//! printed_by = "淄博市财政局办公室"
//! printed_on = "2022-12-20"
//! deadline = "2022-11-30"
//! deadlines = [{ recipient = "省直重点领域主管部门", due = "2022-11-30" }]
//! disclosure = "主动公开"       # 依申请公开, 不予公开
//! urgency = "加急"             # 特急, 特提, 平急
//! contact = "王高文 0531-51769834"
//! ```
use std::path::{Path, PathBuf};

/// The draft file's format, shown by `gongwen issue --help` and `gongwen forward --help`.
pub const FORMAT: &str = "\
The draft file (TOML). Required: prefix, year, dated, main, and for an issued document title, genre and
disclosure (a forward takes its source's disclosure and is a 通知 unless it says otherwise); the rest may be left out.

  prefix = \"淄财采\"                 # the issuer's number prefix (机关代字)
  year = 2022
  title = \"…\"                       # left out in a forward: derived from the source (关于转发…的通知)
  genre = \"通知\"                    # 文种: one of the 15 of the 2012 regulation
  main = [\"各区县财政局\", \"unit:370300.gxq-czj\"]   # 主送: group names, or unit:ID
  cc = []                            # 抄送, the same forms
  body_file = \"body.txt\"            # or body = \"…\"
  attachments = [{ file = \"table.txt\", title = \"联系点名单\" }]   # files the command uploads
  dated = \"2022-12-20\"              # 成文日期
  signer = \"…\"                      # 签发人, for 上行文
  printed_by = \"淄博市财政局办公室\"   # 印发机关
  printed_on = \"2022-12-20\"         # 印发日期
  deadline = \"2022-11-30\"           # report-by date for every recipient
  deadlines = [{ recipient = \"省直重点领域主管部门\", due = \"2022-11-30\" }]   # per recipient or group
  disclosure = \"主动公开\"           # 信息公开选项: 主动公开, 依申请公开, 不予公开
  urgency = \"加急\"                  # 特急, 特提, 加急, 平急
  classification = \"…\"              # 秘密; 机密 and 绝密 only where the server allows them
  classification_term = \"…\"  copy_number = \"…\"  contact = \"王高文 0531-51769834\"  note = \"…\"
";

use serde::Deserialize;

use super::CliError;
use crate::pb;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftFile {
    pub prefix: String,
    pub year: u32,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub genre: Option<String>,
    #[serde(default)]
    pub signer: String,
    #[serde(default)]
    pub main: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub body_file: Option<PathBuf>,
    #[serde(default)]
    pub attachments: Vec<AttachmentFile>,
    pub dated: String,
    #[serde(default)]
    pub printed_by: String,
    #[serde(default)]
    pub printed_on: String,
    #[serde(default)]
    pub deadline: String,
    #[serde(default)]
    pub deadlines: Vec<DeadlineEntry>,
    #[serde(default)]
    pub urgency: Option<String>,
    #[serde(default)]
    pub classification: Option<String>,
    #[serde(default)]
    pub classification_term: String,
    #[serde(default)]
    pub copy_number: String,
    #[serde(default)]
    pub disclosure: Option<String>,
    #[serde(default)]
    pub contact: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentFile {
    pub file: PathBuf,
    pub title: String,
    #[serde(default)]
    pub media_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineEntry {
    pub recipient: String,
    pub due: String,
}

/// "unit:ID" is a unit, anything else a group name.
pub fn recipient(text: &str) -> pb::Recipient {
    let target = match text.strip_prefix("unit:") {
        Some(id) => pb::recipient::Target::UnitId(id.trim().to_owned()),
        None => pb::recipient::Target::Group(text.trim().to_owned()),
    };
    pb::Recipient { target: Some(target) }
}

/// The 15 genres of the 2012 regulation by their Chinese names; one table serves reading drafts and printing.
pub const GENRES: &[(&str, pb::Genre)] = &[
    ("决议", pb::Genre::Resolution),
    ("决定", pb::Genre::Decision),
    ("命令", pb::Genre::Order),
    ("公报", pb::Genre::Communique),
    ("公告", pb::Genre::Announcement),
    ("通告", pb::Genre::PublicNotice),
    ("意见", pb::Genre::Opinion),
    ("通知", pb::Genre::Notice),
    ("通报", pb::Genre::Bulletin),
    ("报告", pb::Genre::Report),
    ("请示", pb::Genre::Request),
    ("批复", pb::Genre::Reply),
    ("议案", pb::Genre::Motion),
    ("函", pb::Genre::Letter),
    ("纪要", pb::Genre::Minutes),
];

pub const DISCLOSURES: &[(&str, pb::Disclosure)] = &[
    ("主动公开", pb::Disclosure::Public),
    ("依申请公开", pb::Disclosure::OnRequest),
    ("不予公开", pb::Disclosure::NotPublic),
];

pub const URGENCIES: &[(&str, pb::Urgency)] = &[
    ("加急", pb::Urgency::Urgent),
    ("特急", pb::Urgency::ExtraUrgent),
    ("特提", pb::Urgency::Flash),
    ("平急", pb::Urgency::Priority),
];

pub const CLASSIFICATIONS: &[(&str, pb::Classification)] = &[
    ("秘密", pb::Classification::Secret),
    ("机密", pb::Classification::Confidential),
    ("绝密", pb::Classification::TopSecret),
];

/// The Chinese name of a wire enum value, or "" for unset and unknown values.
pub fn name_of<E: Copy + Into<i32>>(table: &[(&'static str, E)], value: i32) -> &'static str {
    table.iter().find(|(_, e)| (*e).into() == value).map_or("", |(n, _)| n)
}

fn by_name<E: Copy>(table: &[(&str, E)], what: &str, name: &str) -> Result<E, CliError> {
    table.iter().find(|(n, _)| *n == name).map(|(_, e)| *e).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        CliError::Input(format!("unknown {what} {name:?} ({})", names.join(", ")))
    })
}

/// The genre named in Chinese (令 is accepted for 命令).
pub fn genre(name: &str) -> Result<pb::Genre, CliError> {
    by_name(GENRES, "genre", if name == "令" { "命令" } else { name })
}

fn disclosure(name: &str) -> Result<pb::Disclosure, CliError> {
    by_name(DISCLOSURES, "disclosure", name)
}

fn urgency(name: &str) -> Result<pb::Urgency, CliError> {
    if matches!(name, "" | "无") { Ok(pb::Urgency::None) } else { by_name(URGENCIES, "urgency", name) }
}

fn classification(name: &str) -> Result<pb::Classification, CliError> {
    if matches!(name, "" | "无") {
        Ok(pb::Classification::None)
    } else {
        by_name(CLASSIFICATIONS, "classification", name)
    }
}

impl DraftFile {
    /// Reads a draft file.
    pub fn read(path: &Path) -> Result<(DraftFile, PathBuf), CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| CliError::Io { path: path.display().to_string(), source })?;
        let draft: DraftFile =
            toml::from_str(&text).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((draft, base))
    }

    /// The wire draft; `attachments` are the already uploaded files (SHA-256 and media type per entry).
    pub fn to_wire(&self, base: &Path, attachments: Vec<pb::AttachmentRef>) -> Result<pb::DocumentDraft, CliError> {
        let body = match &self.body_file {
            Some(f) => {
                let p = base.join(f);
                std::fs::read_to_string(&p).map_err(|source| CliError::Io { path: p.display().to_string(), source })?
            }
            None => self.body.clone(),
        };
        Ok(pb::DocumentDraft {
            number_prefix: self.prefix.clone(),
            number_year: self.year,
            title: self.title.clone(),
            genre: self.genre.as_deref().map(genre).transpose()?.map_or(0, |g| g as i32),
            signer: self.signer.clone(),
            main_recipients: self.main.iter().map(|r| recipient(r)).collect(),
            cc_recipients: self.cc.iter().map(|r| recipient(r)).collect(),
            body,
            attachments,
            dated: self.dated.clone(),
            printed_by: self.printed_by.clone(),
            printed_on: self.printed_on.clone(),
            deadline: self.deadline.clone(),
            recipient_deadlines: self
                .deadlines
                .iter()
                .map(|d| pb::RecipientDeadline { recipient: Some(recipient(&d.recipient)), due: d.due.clone() })
                .collect(),
            urgency: urgency(self.urgency.as_deref().unwrap_or(""))? as i32,
            classification: classification(self.classification.as_deref().unwrap_or(""))? as i32,
            classification_term: self.classification_term.clone(),
            copy_number: self.copy_number.clone(),
            disclosure: self.disclosure.as_deref().map(disclosure).transpose()?.map_or(0, |d| d as i32),
            contact: self.contact.clone(),
            note: self.note.clone(),
        })
    }
}

/// A media type from a file extension, for uploads without one.
pub fn media_type_for(path: &Path) -> String {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("txt") => "text/plain; charset=utf-8",
        Some("pdf") => "application/pdf",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("csv") => "text/csv",
        Some("ofd") => "application/ofd",
        _ => "application/octet-stream",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_file_becomes_a_wire_draft() {
        let text = r#"
prefix = "淄财采"
year = 2022
genre = "通知"
main = ["各区县财政局", "unit:370300.gxq-czj"]
dated = "2022-12-20"
disclosure = "主动公开"
urgency = "加急"
deadlines = [{ recipient = "各区县财政局", due = "2022-12-31" }]
"#;
        let d: DraftFile = toml::from_str(text).expect("parses");
        let w = d.to_wire(Path::new("."), vec![]).expect("converts");
        assert_eq!(w.genre, pb::Genre::Notice as i32);
        assert_eq!(w.urgency, pb::Urgency::Urgent as i32);
        assert_eq!(w.main_recipients[1].target, Some(pb::recipient::Target::UnitId("370300.gxq-czj".into())));
        assert_eq!(w.recipient_deadlines.len(), 1);
        assert!(toml::from_str::<DraftFile>("prefix = \"x\"\nyear = 1\ndated = \"\"\nbogus = 1").is_err());
        let bad: DraftFile =
            toml::from_str("prefix = \"x\"\nyear = 1\ndated = \"\"\ngenre = \"小说\"").expect("parses");
        assert!(bad.to_wire(Path::new("."), vec![]).is_err());
    }
}
