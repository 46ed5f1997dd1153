//! 版记 (GB/T 9704-2012 §7.4): 抄送, 印发机关 and 印发日期, with the 信息公开选项 Shandong prints there. A block
//! belongs to the innermost open document that it fits; in a chain the blocks come innermost first.
use chrono::NaiveDate;

use super::Found;
use super::chain::Builder;
use super::classify::Kind;
use super::head::recipients;
use crate::domain::model::Disclosure;

#[derive(Default)]
struct Block {
    keywords: Option<(String, usize)>,
    disclosure: Option<(String, usize)>,
    cc: Option<(String, usize, usize)>,
    printed_by: Option<(String, usize)>,
    printed_on: Option<(Result<NaiveDate, String>, usize)>,
}

fn disclosure(text: &str) -> Option<Disclosure> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    match t.as_str() {
        "主动公开" | "公开" => Some(Disclosure::Public),
        "依申请公开" => Some(Disclosure::OnRequest),
        "不予公开" | "不公开" | "免予公开" => Some(Disclosure::NotPublic),
        _ => None,
    }
}

impl Builder<'_> {
    /// A 版记 starts here: a disclosure option, a cc line, a printing line, or the printing office's name above
    /// a printing line that has none.
    pub fn trailer_starts(&self, i: usize) -> bool {
        match self.kind(i) {
            Some(Kind::Disclosure(_) | Kind::Cc(_) | Kind::Printed { .. } | Kind::Keywords(_)) => true,
            Some(Kind::Other) => self.office_line(i),
            _ => false,
        }
    }

    /// A name alone on its line, followed by a printing line without a name.
    fn office_line(&self, i: usize) -> bool {
        self.single_unit_name(i) && matches!(self.kind(i + 1), Some(Kind::Printed { by, .. }) if by.is_empty())
    }

    pub fn trailer_block(&mut self, i: usize) -> usize {
        let mut b = Block::default();
        let mut j = i;
        while let Some(line) = self.lines.get(j) {
            let no = line.no;
            match line.kind.clone() {
                Kind::Keywords(v) if b.keywords.is_none() => b.keywords = Some((v, no)),
                Kind::Disclosure(v) if b.disclosure.is_none() => b.disclosure = Some((v, no)),
                // 抄报 and 抄送 (1999 layout) stand on consecutive lines; both are read as the cc list.
                Kind::Cc(v) if b.cc.as_ref().is_none_or(|c| j > 0 && self.lines[j - 1].no == c.2) => {
                    let (mut text, first) = match b.cc.take() {
                        Some((before, first, _)) => (format!("{}，{v}", before.trim_end_matches(['。', '.'])), first),
                        None => (v, no),
                    };
                    let mut last = no;
                    // A long cc list wraps onto further lines until its closing 。.
                    while !text.ends_with(['。', '.'])
                        && matches!(self.kind(j + 1), Some(Kind::Other))
                        && !self.office_line(j + 1)
                        && !self.document_starts(j + 1)
                    {
                        j += 1;
                        text.push_str(&self.lines[j].text);
                        last = self.lines[j].no;
                    }
                    b.cc = Some((text, first, last));
                }
                Kind::Other if b.printed_by.is_none() && self.office_line(j) => {
                    b.printed_by = Some((line.compact.clone(), no))
                }
                Kind::Printed { by, on } if b.printed_on.is_none() => {
                    if !by.is_empty() {
                        b.printed_by = Some((by, no));
                    }
                    b.printed_on = Some((on, no));
                    j += 1;
                    break;
                }
                _ => break,
            }
            j += 1;
        }
        self.assign_block(b, i, j);
        j
    }

    /// Gives the block to the innermost open document that has none of its elements yet, preferring one whose
    /// issuer is named by the printing office (山东省财政厅办公室 prints for 山东省财政厅). Documents above it are
    /// closed; so is the owner once its cc or printing line is read, since those end the 版记.
    fn assign_block(&mut self, b: Block, from: usize, to: usize) {
        let fits = |s: &Self, d: usize| {
            let doc = &s.docs[d];
            !(b.disclosure.is_some() && doc.disclosure.is_some()
                || b.keywords.is_some() && doc.keywords.is_some()
                || b.cc.is_some() && doc.cc.is_some()
                || (b.printed_by.is_some() || b.printed_on.is_some())
                    && (doc.printed_by.is_some() || doc.printed_on.is_some()))
        };
        let office = b.printed_by.as_ref().map(|p| p.0.clone()).unwrap_or_default();
        let named = |s: &Self, d: usize| {
            s.docs[d].issuer.as_ref().is_some_and(|x| !office.is_empty() && office.starts_with(&x.value))
        };
        // Real chains are a few documents deep; looking further down would only cost time on hostile input.
        let open: Vec<usize> = self.stack.iter().rev().take(16).copied().collect();
        let owner = open
            .iter()
            .copied()
            .find(|d| fits(self, *d) && named(self, *d))
            .or_else(|| open.iter().copied().find(|d| fits(self, *d)));
        let Some(d) = owner else {
            self.stray(from, to, None, "a 版记 (disclosure, cc, printing) with no open document to belong to");
            return;
        };
        while self.stack.last().is_some_and(|top| *top != d) {
            self.stack.pop();
        }
        if let Some((v, no)) = b.keywords {
            self.docs[d].keywords = Some(Found::new(v.split_whitespace().map(str::to_owned).collect(), no, no));
        }
        if let Some((v, no)) = b.disclosure {
            match disclosure(&v) {
                Some(x) => self.docs[d].disclosure = Some(Found::new(x, no, no)),
                None => self.warn(Some(no), Some(d), format!("unknown disclosure option (信息公开选项) 「{v}」")),
            }
        }
        if let Some((v, first, last)) = &b.cc {
            self.docs[d].cc = Some(Found::new(recipients(v), *first, *last));
        }
        let closes = b.cc.is_some() || b.printed_on.is_some();
        if let Some((v, no)) = b.printed_by {
            self.docs[d].printed_by = Some(Found::new(v, no, no));
        }
        if let Some((on, no)) = b.printed_on {
            match on {
                Ok(x) => self.docs[d].printed_on = Some(Found::new(x, no, no)),
                Err(reason) => self.warn(Some(no), Some(d), format!("unreadable printing date (印发日期): {reason}")),
            }
        }
        if closes {
            self.stack.pop();
            self.closed = Some(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disclosure_options() {
        assert_eq!(disclosure("主动公开"), Some(Disclosure::Public));
        assert_eq!(disclosure("依申请 公开"), Some(Disclosure::OnRequest));
        assert_eq!(disclosure("不予公开"), Some(Disclosure::NotPublic));
        assert_eq!(disclosure("看情况"), None);
    }
}
