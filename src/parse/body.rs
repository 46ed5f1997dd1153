//! 主体 after the recipients: body, contact, attachment list, signature, date, note, and the attachments printed
//! after the document.
use super::chain::{Builder, Phase};
use super::classify::{Kind, half_width};
use super::head::{balanced, split_wide};
use super::{Annex, AttachmentItem, Contact, Found, ParsedDocument};
use crate::domain::number::DocNumber;
use crate::domain::title::normalize_title;

/// Punctuation that ends a paragraph; a line ending otherwise was cut by a page or line break.
const ENDS_PARAGRAPH: &[char] =
    &['。', '！', '？', '；', '：', '…', '”', '’', '）', ')', '」', '』', '!', '?', ';', ':'];

impl Builder<'_> {
    /// Reads from line `i` up to the date (included) or the next break: body, contact, attachment list, signature.
    pub fn main_part(&mut self, d: usize, i: usize) -> usize {
        if let Some(&Kind::AnnexHeading(n)) = self.kind(i) {
            self.phase[d] = Phase::AfterBody;
            return self.annex_heading(d, i, n);
        }
        let mut j = i;
        while j < self.lines.len() && !matches!(self.kind(j), Some(Kind::Date(_))) && (j == i || !self.is_break(j)) {
            j += 1;
        }
        let mut lines: Vec<usize> = (i..j).collect();
        let date = match self.kind(j) {
            Some(Kind::Date(date)) => Some((j, date.clone())),
            _ => None,
        };
        // The signing units stand right above the date.
        if date.is_some() {
            let mut sig = Vec::new();
            while let Some(&k) = lines.last() {
                if sig.len() == 4 || !self.signature_line(k) {
                    break;
                }
                sig.push(k);
                lines.pop();
            }
            for k in sig.into_iter().rev() {
                let no = self.lines[k].no;
                for name in split_wide(&self.lines[k].text) {
                    self.docs[d].signature.push(Found::new(name, no, no));
                }
            }
        }
        let contact: Vec<usize> = lines.iter().copied().filter(|k| self.kind(*k) == Some(&Kind::Contact)).collect();
        lines.retain(|k| contact.binary_search(k).is_err());
        self.read_contact(d, &contact);
        let listed = |s: &Self, k: usize| matches!(s.kind(k), Some(Kind::AttachList(_)));
        if let Some(mut at) = lines.iter().rposition(|k| listed(self, *k)) {
            // 附件1：… 附件2：… puts the label on every entry.
            while at > 0 && listed(self, lines[at - 1]) {
                at -= 1;
            }
            let list = lines.split_off(at);
            self.read_attachment_list(d, &list);
        }
        self.read_body(d, &lines, j >= self.lines.len() && date.is_none());
        self.phase[d] = Phase::AfterBody;
        if let Some((k, date)) = date {
            self.set_date(d, k, date);
            return k + 1;
        }
        j
    }

    fn signature_line(&self, k: usize) -> bool {
        let Some(line) = self.lines.get(k) else { return false };
        let names = split_wide(&line.text);
        line.kind == Kind::Other
            && !line.text.contains('\t')
            && !names.is_empty()
            && names.iter().all(|n| super::classify::is_unit_name(n))
    }

    fn set_date(&mut self, d: usize, k: usize, date: Result<chrono::NaiveDate, String>) {
        let no = self.lines[k].no;
        match date {
            Ok(date) => self.docs[d].dated = Some(Found::new(date, no, no)),
            Err(reason) => self.warn(Some(no), Some(d), format!("unreadable date (成文日期): {reason}")),
        }
        self.phase[d] = Phase::AfterDate;
    }

    fn read_body(&mut self, d: usize, lines: &[usize], at_end: bool) {
        let (Some(&first), Some(&last)) = (lines.first(), lines.last()) else { return };
        let texts: Vec<&str> = lines.iter().map(|k| self.lines[*k].text.as_str()).collect();
        let body = mend(&texts);
        let (first_no, last_no) = (self.lines[first].no, self.lines[last].no);
        if at_end {
            // Nothing follows the body: no date, no 版记. A whole document does not end so.
            let how = if body.ends_with(ENDS_PARAGRAPH) { "after the body" } else { "in mid-sentence" };
            let message = format!("the text stops {how} at line {last_no}: the file may be cut short");
            self.warn(Some(last_no), Some(d), message);
        }
        match self.docs[d].body.as_mut() {
            Some(existing) => {
                existing.value.push('\n');
                existing.value.push_str(&body);
                existing.lines.1 = last_no;
            }
            None => self.docs[d].body = Some(Found::new(body, first_no, last_no)),
        }
    }

    fn read_contact(&mut self, d: usize, lines: &[usize]) {
        for &k in lines {
            let no = self.lines[k].no;
            let c = contact(&self.lines[k].text);
            match self.docs[d].contact.as_mut() {
                None => self.docs[d].contact = Some(Found::new(c, no, no)),
                // A line with the phone (联系电话：…) completes one with the name only.
                Some(existing) if existing.value.phone.is_none() && existing.lines.1 + 2 >= no => {
                    existing.value.text = format!("{} {}", existing.value.text, c.text);
                    existing.value.phone = c.phone;
                    existing.lines.1 = no;
                }
                Some(existing) => {
                    let first = existing.lines.0;
                    if self.extra_contact_told.insert(d) {
                        let message = format!("more contact lines than one; the one on line {first} is kept");
                        self.warn(Some(no), Some(d), message);
                    }
                }
            }
        }
    }

    /// 附件：1. … / 2. … or a single 附件：…; a line that does not start with an ordinal continues the entry above.
    fn read_attachment_list(&mut self, d: usize, lines: &[usize]) {
        let mut items: Vec<(Option<u32>, String, usize, usize)> = Vec::new();
        for &k in lines {
            let line = &self.lines[k];
            let text = match &line.kind {
                Kind::AttachList(rest) => rest.as_str(),
                _ => line.text.as_str(),
            };
            if text.trim().is_empty() {
                continue;
            }
            match (leading_ordinal(text), items.last_mut()) {
                (Some((ord, rest)), _) => items.push((Some(ord), rest.to_owned(), line.no, line.no)),
                (None, Some(last)) => {
                    last.1.push_str(text);
                    last.3 = line.no;
                }
                (None, None) => items.push((None, text.to_owned(), line.no, line.no)),
            }
        }
        for (n, (ordinal, text, first, last)) in items.into_iter().enumerate() {
            let expected = n as u32 + 1;
            if ordinal.is_some_and(|o| o != expected) {
                let message = format!("attachment list: entry {} is numbered {}", expected, ordinal.unwrap_or(0));
                self.warn(Some(first), Some(d), message);
            }
            let (title, number) = split_number(&normalize_title(&text));
            let item = AttachmentItem { ordinal: ordinal.unwrap_or(expected), title, number, document: None };
            self.docs[d].attachments.push(Found::new(item, first, last));
        }
    }

    /// After the body: the date (when a page break hid it from the body), note, contact, attachments.
    pub fn after_main(&mut self, d: usize, i: usize) -> usize {
        let line = &self.lines[i];
        let no = line.no;
        match line.kind.clone() {
            Kind::AnnexHeading(n) => return self.annex_heading(d, i, n),
            Kind::Contact if self.docs[d].contact.is_none() => self.read_contact(d, &[i]),
            Kind::Date(date) if self.docs[d].dated.is_none() => self.set_date(d, i, date),
            Kind::Other if self.docs[d].note.is_none() && note(&line.text).is_some() => {
                let text = note(&line.text).unwrap_or_default();
                self.docs[d].note = Some(Found::new(text, no, no));
            }
            _ => {
                let end = self.next_break(i + 1);
                self.stray(i, end, Some(d), &format!("text after the body of {}", self.name(d)));
                return end;
            }
        }
        i + 1
    }

    /// A 附件 heading: the start of an attachment's pages, or of a nested document printed as the attachment.
    fn annex_heading(&mut self, d: usize, i: usize, ordinal: Option<u32>) -> usize {
        self.heading_before = Some(i + 1);
        if self.document_starts(i + 1) {
            return i + 1;
        }
        self.heading_before = None;
        let mut j = i + 1;
        let mut title: Option<String> = None;
        if matches!(self.kind(j), Some(Kind::Other)) && !self.is_break(j) {
            let mut t = self.lines[j].text.clone();
            j += 1;
            // A title cut by a line break inside 《…》 continues on the next line.
            while !balanced(&t) && matches!(self.kind(j), Some(Kind::Other)) && !self.lines[j].gap_before {
                t.push_str(&self.lines[j].text);
                j += 1;
            }
            title = Some(normalize_title(&t));
        }
        let first = self.lines[i].no;
        let annex = Annex { ordinal, title, text: String::new() };
        let last = self.lines[j - 1].no;
        self.docs[d].annexes.push(Found::new(annex, first, last));
        self.phase[d] = Phase::Annex;
        self.annex_content(d, j)
    }

    /// The content of the current attachment, up to the next break.
    pub fn annex_content(&mut self, d: usize, i: usize) -> usize {
        if let Some(Kind::AnnexHeading(n)) = self.kind(i) {
            return self.annex_heading(d, i, *n);
        }
        let end = self.next_break(i);
        let texts: Vec<&str> = self.lines[i.min(end)..end].iter().map(|l| l.text.as_str()).collect();
        let last_no = self.lines.get(end.wrapping_sub(1)).map(|l| l.no);
        if let (Some(annex), Some(last_no), false) = (self.docs[d].annexes.last_mut(), last_no, texts.is_empty()) {
            if !annex.value.text.is_empty() {
                annex.value.text.push('\n');
            }
            annex.value.text.push_str(&texts.join("\n"));
            annex.lines.1 = annex.lines.1.max(last_no);
        }
        end
    }
}

/// Joins lines a page or line break cut in mid-sentence; keeps headings (一、… （一）…) on lines of their own.
pub(crate) fn mend(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut previous: Option<&str> = None;
    for line in lines {
        if let Some(p) = previous {
            let cut = !p.ends_with(ENDS_PARAGRAPH) && !is_heading(p) && !starts_heading(line);
            if !cut {
                out.push('\n');
            }
        }
        out.push_str(line);
        previous = Some(line);
    }
    out
}

/// A heading line of its own: an ordinal such as 一、 or （一） and a short text without a full stop.
fn is_heading(line: &str) -> bool {
    starts_heading(line) && line.chars().count() <= 40 && !line.contains('。')
}

fn starts_heading(line: &str) -> bool {
    let rest = line.trim_start_matches(['一', '二', '三', '四', '五', '六', '七', '八', '九', '十']);
    let chinese = rest.len() < line.len() && rest.starts_with('、');
    let bracketed = line.starts_with(['（', '(']);
    let article = line.starts_with('第') && line.chars().take(6).any(|c| matches!(c, '条' | '章' | '节'));
    chinese || bracketed || article || leading_ordinal(line).is_some()
}

/// 1. 1． 1、 1) at the start of an attachment-list entry: the ordinal and the text after it.
fn leading_ordinal(text: &str) -> Option<(u32, &str)> {
    let text = text.trim_start();
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit() || ('０'..='９').contains(c)).collect();
    if digits.is_empty() || digits.chars().count() > 2 {
        return None;
    }
    let rest = &text[digits.len()..];
    let rest = rest.strip_prefix(['.', '．', '、', ')', '）'])?;
    let n: u32 = digits.chars().map(half_width).collect::<String>().parse().ok()?;
    Some((n, rest.trim_start()))
}

/// A title followed by its document number in brackets: 《…》（淄财采〔2022〕20号）.
fn split_number(title: &str) -> (String, Option<DocNumber>) {
    let Some(inner_end) = title.strip_suffix(['）', ')']) else { return (title.to_owned(), None) };
    // The number may use （）around its year too, so try each opening bracket from the right.
    for (open, c) in inner_end.char_indices().rev().filter(|(_, c)| matches!(c, '（' | '(')) {
        let normalised: String = inner_end[open + c.len_utf8()..].chars().map(half_width).collect();
        if let Ok(n) = DocNumber::parse(&normalised) {
            return (title[..open].to_owned(), Some(n));
        }
    }
    (title.to_owned(), None)
}

/// 附注: a line in brackets after the date, or one labelled 附注.
fn note(text: &str) -> Option<String> {
    if let Some(rest) = text.strip_prefix("附注") {
        return Some(rest.trim_start_matches(['：', ':']).trim().to_owned());
    }
    let inner = text.strip_prefix(['（', '('])?.strip_suffix(['）', ')'])?;
    Some(inner.trim().to_owned())
}

/// 联系人及电话：王高文 0531-51769834。 → text 王高文 0531-51769834, name 王高文, phone 0531-51769834.
fn contact(line: &str) -> Contact {
    let line = line.trim().trim_start_matches(['（', '(']).trim_end_matches(['。', '）', ')', '.']).trim();
    contact_from_text(line.split_once(['：', ':']).map_or(line, |(_, rest)| rest))
}

/// The contact's text after its label: the name is the Chinese characters it starts with, the phone the first run
/// of at least 7 digits (with - and brackets).
pub(crate) fn contact_from_text(text: &str) -> Contact {
    let text = text.trim().to_owned();
    let name: String = text.chars().take_while(|c| super::classify::is_cjk(*c)).collect();
    let digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let phone_char = |c: char| digit(c) || "-－—()（） ".contains(c);
    let chars: Vec<char> = text.chars().collect();
    let (mut k, mut phone) = (0, None);
    while k < chars.len() && phone.is_none() {
        let start = k;
        while k < chars.len() && (digit(chars[k]) || (k > start && phone_char(chars[k]))) {
            k += 1;
        }
        let run: String = chars[start..k].iter().collect();
        let run = run.trim().trim_end_matches(['(', '（', '-', '－', '—']).trim();
        if run.chars().filter(|c| digit(*c)).count() >= 7 {
            phone = Some(run.to_owned());
        }
        k = k.max(start + 1);
    }
    let name = (!name.is_empty() && name.chars().count() <= 6).then_some(name);
    Contact { text, name, phone }
}

/// The first and last line of every element of a document (0, 0 when it has none).
pub(crate) fn span(doc: &ParsedDocument) -> (usize, usize) {
    let mut all: Vec<(usize, usize)> = Vec::new();
    macro_rules! add {
        ($($f:ident),*) => { $( if let Some(x) = &doc.$f { all.push(x.lines); } )* };
    }
    add!(copy_number, classification, urgency, banner, number, signers, title, main_recipients, body);
    add!(dated, note, contact, keywords, disclosure, cc, printed_by, printed_on);
    all.extend(doc.attachments.iter().map(|x| x.lines));
    all.extend(doc.signature.iter().map(|x| x.lines));
    all.extend(doc.annexes.iter().map(|x| x.lines));
    let first = all.iter().map(|x| x.0).min().unwrap_or(0);
    let last = all.iter().map(|x| x.1).max().unwrap_or(0);
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_breaks_are_mended_and_headings_kept() {
        let lines = [
            "一、总则",
            "为推进改革，将事项交由社会",
            "力量承担。",
            "（一）加强管理。纳入",
            "目录的事项",
            "（二）规范程序。",
        ];
        assert_eq!(
            mend(&lines),
            "一、总则\n为推进改革，将事项交由社会力量承担。\n（一）加强管理。纳入目录的事项\n（二）规范程序。"
        );
    }

    #[test]
    fn contact_lines() {
        let c = contact("联系人及电话：王高文 0531-51769834。");
        assert_eq!(
            (c.text.as_str(), c.name.as_deref(), c.phone.as_deref()),
            ("王高文 0531-51769834", Some("王高文"), Some("0531-51769834"))
        );
        let c = contact("（联系人：张三，联系电话：0533-1234567）");
        assert_eq!((c.name.as_deref(), c.phone.as_deref()), (Some("张三"), Some("0533-1234567")));
        let c = contact("联系电话：12345");
        assert_eq!((c.name, c.phone), (None, None));
    }

    #[test]
    fn numbers_after_titles() {
        let (t, n) = split_number("淄博市财政局《关于转发〈某〉的通知》（淄财采〔2022〕20号）");
        assert_eq!(t, "淄博市财政局《关于转发〈某〉的通知》");
        assert_eq!(n.map(|n| n.to_string()).as_deref(), Some("淄财采〔2022〕20号"));
        assert_eq!(split_number("名单（试行）").0, "名单（试行）");
        assert_eq!(split_number("《某》(淄财采（2022）20号)").1.map(|n| n.serial), Some(20));
        assert_eq!(leading_ordinal("１．名单"), Some((1, "名单")));
        assert_eq!(leading_ordinal("2022年名单"), None);
    }
}
