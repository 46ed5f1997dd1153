//! 版头 and the top of 主体: copy number, classification, urgency, banner, number, signer; title; main recipients.
use super::chain::Builder;
use super::classify::Kind;
use super::{Found, Recipients};
use crate::domain::title::normalize_title;

/// The last words of a title: the 15 genres (文种) of the 2012 regulation (命令 also as 令; 复函 ends in 函).
const GENRES: [&str; 16] = [
    "决议", "决定", "命令", "令", "公报", "公告", "通告", "意见", "通知", "通报", "报告", "请示", "批复", "议案", "函",
    "纪要",
];

/// Splits at tabs, full-width spaces and runs of two or more spaces, the gaps a layout puts between names; a single
/// space is PDF noise and is dropped with the others.
pub(crate) fn split_wide(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut spaces = 0;
    for c in text.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        let wide = c == '\t' || c == '\u{3000}' || (c.is_whitespace() && c != ' ');
        if (wide || spaces >= 2) && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        spaces = 0;
        if !wide {
            current.push(c);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// A whole title: it ends in a genre with every bracket closed, and holds no full stop.
pub(crate) fn is_title(compact: &str) -> bool {
    balanced(compact) && GENRES.iter().any(|g| compact.ends_with(g)) && !compact.contains('。')
}

/// Brackets opened are closed again: a title or entry is not cut inside 《…》 or （…）.
pub(crate) fn balanced(text: &str) -> bool {
    let count = |c: char| text.chars().filter(|x| *x == c).count();
    [('《', '》'), ('〈', '〉'), ('（', '）'), ('(', ')'), ('“', '”')].iter().all(|(o, c)| count(*o) <= count(*c))
}

/// Splits a recipient list at top-level separators (not inside brackets).
fn split_top(text: &str, separators: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '（' | '(' | '《' | '〈' | '【' | '[' => depth += 1,
            '）' | ')' | '》' | '〉' | '】' | ']' => depth = (depth - 1).max(0),
            _ => {}
        }
        if depth == 0 && separators.contains(&c) {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    out.push(current);
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// A recipient list as written: whitespace dropped, the closing ：or 。 removed.
pub(crate) fn recipients(text: &str) -> Recipients {
    let written: String = normalize_title(text).trim_end_matches(['：', ':', '。', '.', '；', ';']).to_owned();
    let items = split_top(&written, &['，', '、', '；', ',', ';']);
    let groups = split_top(&written, &['，', '；', ',', ';']);
    Recipients { written, items, groups }
}

impl Builder<'_> {
    /// Reads the header lines from `i`; returns the first line after them.
    pub fn header(&mut self, d: usize, i: usize) -> usize {
        let mut j = i;
        let mut names: Vec<(String, usize)> = Vec::new();
        let mut names_from = None;
        while let Some(line) = self.lines.get(j) {
            let (no, text) = (line.no, line.text.clone());
            let doc = &self.docs[d];
            let open = doc.banner.is_none() && doc.number.is_none();
            match line.kind.clone() {
                Kind::CopyNumber if open && doc.copy_number.is_none() => {
                    self.docs[d].copy_number = Some(Found::new(line.compact.clone(), no, no));
                }
                Kind::Classification if open && doc.classification.is_none() => {
                    self.docs[d].classification = Some(Found::new(line.compact.clone(), no, no));
                }
                Kind::Urgency if open && doc.urgency.is_none() => {
                    self.docs[d].urgency = Some(Found::new(line.compact.clone(), no, no));
                }
                Kind::Other if open && self.single_unit_name(j) => {
                    names_from = names_from.or(Some(j));
                    names.push((line.compact.clone(), no));
                }
                Kind::Banner(name) if open => {
                    let first = names.first().map_or(no, |n| n.1);
                    let mut issuers: Vec<String> = names.drain(..).map(|n| n.0).collect();
                    let printed: Vec<String> = issuers.iter().cloned().chain([line.compact.clone()]).collect();
                    if !name.is_empty() {
                        // One line may hold several issuers set apart by wide gaps.
                        let before = text.trim_end().strip_suffix("件").and_then(|t| t.trim_end().strip_suffix('文'));
                        issuers.extend(split_wide(before.unwrap_or(&name)));
                    }
                    self.docs[d].banner = Some(Found::new(printed.join("\n"), first, no));
                    if let Some(issuer) = issuers.first() {
                        self.docs[d].issuer = Some(Found::new(issuer.clone(), first, no));
                    }
                }
                Kind::Number { number, signers } if doc.number.is_none() => {
                    self.names_as_banner(d, &mut names);
                    match number {
                        Ok(n) => self.docs[d].number = Some(Found::new(n, no, no)),
                        Err(reason) => self.warn(Some(no), Some(d), format!("unreadable document number: {reason}")),
                    }
                    if let Some(s) = signers {
                        self.docs[d].signers = Some(Found::new(split_wide(&s), no, no));
                    }
                }
                Kind::Signer(s) if doc.signers.is_none() => {
                    self.docs[d].signers = Some(Found::new(split_wide(&s), no, no));
                }
                Kind::Other if self.more_signers(d, j) => {
                    if let Some(s) = self.docs[d].signers.as_mut() {
                        s.value.extend(split_wide(&text));
                        s.lines.1 = no;
                    }
                }
                _ => break,
            }
            j += 1;
        }
        // Name lines that were not followed by a banner or number were the start of the title after all.
        if names.is_empty() { j } else { names_from.unwrap_or(j) }
    }

    /// Whether line `j` is a further row of signers of document `d`. GB/T 9704 §7.2.4 sets signers two a row, so a
    /// row follows only a full one and holds only names of two to four characters; and it puts the number on the
    /// last signer row, so rows under a 签发人 row the number has not followed yet are names. Under the number a row
    /// of names is rare and a title's first line cut after a few characters (山东省 / 财政厅关于…) is common, so
    /// there it counts as signers only when it stands right under them and a blank line sets it off from what
    /// follows, as the header block is set off from the title.
    fn more_signers(&self, d: usize, j: usize) -> bool {
        let Some(line) = self.lines.get(j) else { return false };
        let doc = &self.docs[d];
        let Some(signers) = doc.signers.as_ref() else { return false };
        let names = split_wide(&line.text);
        let full_row_above = signers.lines.1 + 1 == line.no && signers.value.len() % 2 == 0;
        let only_names = names.iter().all(|n| {
            (2..=4).contains(&n.chars().count()) && n.chars().all(super::classify::is_cjk) && !n.starts_with("关于")
        });
        if !full_row_above || !only_names || is_title(&line.compact) {
            return false;
        }
        let number_above = doc.number.as_ref().is_some_and(|n| n.lines.0 <= signers.lines.1);
        if !number_above {
            return true;
        }
        !line.gap_before && self.lines.get(j + 1).is_none_or(|next| next.gap_before)
    }

    /// A letter (函) prints its issuer's name as the banner, without 文件.
    fn names_as_banner(&mut self, d: usize, names: &mut Vec<(String, usize)>) {
        if let (Some(first), Some(last)) = (names.first().cloned(), names.last().cloned()) {
            let printed: Vec<String> = names.drain(..).map(|n| n.0).collect();
            self.docs[d].issuer = Some(Found::new(first.0, first.1, first.1));
            self.docs[d].banner = Some(Found::new(printed.join("\n"), first.1, last.1));
        }
    }

    /// A title printed above the number (web pages put it first): lines `from..to`, when they read as one.
    pub fn title_above(&mut self, d: usize, from: usize, to: usize) -> bool {
        let compact: String = self.lines[from..to].iter().map(|l| l.compact.as_str()).collect();
        let plain = self.lines[from..to].iter().all(|l| l.kind == Kind::Other);
        if !plain || to - from > 4 || !is_title(&compact) {
            return false;
        }
        let (first, last) = (self.lines[from].no, self.lines[to - 1].no);
        let raw: String = self.lines[from..to].iter().map(|l| l.text.as_str()).collect();
        self.docs[d].title = Some(Found::new(normalize_title(&raw), first, last));
        true
    }

    /// Reads the title and the main recipients from line `i`; returns the first line after them.
    pub fn title_and_recipients(&mut self, d: usize, i: usize) -> usize {
        let mut cand = Vec::new();
        let mut j = i;
        while cand.len() < 8 && matches!(self.kind(j), Some(Kind::Other)) && (j == i || !self.is_break(j)) {
            cand.push(j);
            j += 1;
        }
        let text = |k: usize| self.lines[cand[k]].compact.as_str();
        let ends_title = |k: usize| is_title(&(0..=k).map(text).collect::<String>());
        let first_end = (0..cand.len().min(5)).find(|k| ends_title(*k));
        let recipients_at = (0..cand.len().min(7)).find(|k| {
            let t = text(*k);
            t.ends_with(['：', ':'])
                && !t.ends_with("如下：")
                && !t.ends_with("如下:")
                && !t.contains(['。', '《'])
                && t.chars().count() <= 400
                && first_end.is_none_or(|e| *k > e)
        });
        // Before the recipients the title is as long as it can be: a line break may leave a genre word such as
        // 通知 at the end of a title's first line (关于加强通知 / 管理的通知).
        let last_end = recipients_at.and_then(|r| (0..r.min(5)).rev().find(|k| ends_title(*k)));
        let (title_end, recipients_at) = match (recipients_at, last_end) {
            (Some(r), Some(e)) if r - e <= 3 => (Some(e), Some(r)),
            (Some(r), None) => (None, Some(r)),
            // Recipients far below the title are a body line ending in a colon.
            _ => (first_end, None),
        };
        let title_lines = match (title_end, recipients_at) {
            (Some(e), _) => e + 1,
            (None, Some(r)) => r,
            (None, None) if cand.is_empty() => 0,
            (None, None) => {
                if let Some(&k) = cand.first() {
                    let no = self.lines[k].no;
                    let message = "cannot tell where the title ends (it names no genre such as 通知); took one line";
                    self.warn(Some(no), Some(d), message.into());
                }
                1
            }
        };
        let title_lines = title_lines.min(cand.len());
        if title_lines > 0 {
            let raw: String = cand[..title_lines].iter().map(|k| self.lines[*k].text.as_str()).collect();
            let (first, last) = (self.lines[cand[0]].no, self.lines[cand[title_lines - 1]].no);
            let title = normalize_title(&raw);
            if title.contains('。') || title.chars().count() > 200 {
                self.warn(Some(first), Some(d), "no title: the text after the header reads as body text".into());
                return cand.first().copied().unwrap_or(i);
            }
            if !balanced(&title) {
                self.warn(Some(first), Some(d), format!("the title 「{title}」 opens a bracket it does not close"));
            }
            self.docs[d].title = Some(Found::new(title, first, last));
        }
        let Some(r) = recipients_at.filter(|r| *r >= title_lines) else {
            return cand.get(title_lines).copied().unwrap_or(j);
        };
        let raw: String = cand[title_lines..=r].iter().map(|k| self.lines[*k].text.as_str()).collect();
        let (first, last) = (self.lines[cand[title_lines]].no, self.lines[cand[r]].no);
        self.docs[d].main_recipients = Some(Found::new(recipients(&raw), first, last));
        cand[r] + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_gaps_split_names_and_single_spaces_vanish() {
        assert_eq!(split_wide("张三　李四"), vec!["张三", "李四"]);
        assert_eq!(split_wide("山东省财政厅    山东省民政厅"), vec!["山东省财政厅", "山东省民政厅"]);
        assert_eq!(split_wide("淄博市 财政局"), vec!["淄博市财政局"]);
        assert_eq!(split_wide(" 张三\t"), vec!["张三"]);
        assert!(split_wide("   ").is_empty());
    }

    #[test]
    fn recipients_keep_groups_and_bracketed_separators() {
        let r = recipients("区直各部门、单位，各镇(街道)财政所，开发区财政审计局：");
        assert_eq!(r.written, "区直各部门、单位，各镇(街道)财政所，开发区财政审计局");
        assert_eq!(r.items, vec!["区直各部门", "单位", "各镇(街道)财政所", "开发区财政审计局"]);
        assert_eq!(r.groups, vec!["区直各部门、单位", "各镇(街道)财政所", "开发区财政审计局"]);
        let r = recipients("各县（市、区）财政局，市直 各部门：");
        assert_eq!(r.items, vec!["各县（市、区）财政局", "市直各部门"]);
    }

    #[test]
    fn balance() {
        assert!(balanced("关于转发《山东省财政厅关于〈某〉的通知》的通知"));
        assert!(!balanced("关于转发《山东省财政厅关于做好"));
        assert!(balanced("无括号"));
    }
}
