//! Prints parsed documents back as GB/T 9704-style text: what [`super::parse_text`] reads, so that fields →
//! text → fields is a round trip. The [`Style`] switches produce the layouts real sources show (PDF text with blank
//! lines and page numbers, Word text without blank lines, variant brackets and digits, Chinese-numeral dates).
use super::dates::{arabic, chinese};
use super::{Parsed, ParsedDocument};
use crate::domain::model::Disclosure;
use crate::domain::number::DocNumber;

/// Layout switches; the default is the standard layout with a blank line between elements.
#[derive(Debug, Clone)]
pub struct Style {
    /// A blank line after each element and paragraph, as PDF extraction gives; without, Word's one line each.
    pub blank_lines: bool,
    /// Dates in Chinese numerals (二〇二二年十二月二十二日).
    pub chinese_dates: bool,
    /// The brackets around the number's year.
    pub brackets: (char, char),
    /// Full-width digits in the number.
    pub full_width_digits: bool,
    /// A page number line (— n —) after every second body paragraph.
    pub page_numbers: bool,
    /// Break the title after this many characters, with a stray space, as PDF extraction does.
    pub title_break: Option<usize>,
    /// The printing office on its own line above the printing date (as in the corpus), else on the same line.
    pub office_apart: bool,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            blank_lines: true,
            chinese_dates: false,
            brackets: ('〔', '〕'),
            full_width_digits: false,
            page_numbers: false,
            title_break: None,
            office_apart: true,
        }
    }
}

/// 信息公开选项 as printed.
pub fn disclosure_text(d: Disclosure) -> &'static str {
    match d {
        Disclosure::Public => "主动公开",
        Disclosure::OnRequest => "依申请公开",
        Disclosure::NotPublic => "不予公开",
    }
}

/// Every outermost document of `parsed` with the documents nested in it, in the standard layout.
pub fn render(parsed: &Parsed) -> String {
    render_with(parsed, &Style::default())
}

pub fn render_with(parsed: &Parsed, style: &Style) -> String {
    let mut out = Out { text: String::new(), style, page: 0 };
    let mut seen = vec![false; parsed.documents.len()];
    for (d, doc) in parsed.documents.iter().enumerate() {
        if doc.attached_to.is_none() {
            out.document(parsed, d, &mut seen);
        }
    }
    out.text
}

struct Out<'a> {
    text: String,
    style: &'a Style,
    page: usize,
}

impl Out<'_> {
    fn line(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
        if self.style.blank_lines {
            self.text.push('\n');
        }
    }

    fn date(&self, d: chrono::NaiveDate) -> String {
        if self.style.chinese_dates { chinese(d) } else { arabic(d) }
    }

    fn number(&self, n: &DocNumber) -> String {
        let digits = |v: u32| -> String {
            let s = v.to_string();
            if !self.style.full_width_digits {
                return s;
            }
            s.chars().map(|c| char::from_u32(u32::from(c) - u32::from('0') + u32::from('０')).unwrap_or(c)).collect()
        };
        let (open, close) = self.style.brackets;
        format!("{}{open}{}{close}{}号", n.prefix, digits(n.year), digits(n.serial))
    }

    fn document(&mut self, parsed: &Parsed, d: usize, seen: &mut [bool]) {
        let Some(doc) = parsed.documents.get(d) else { return };
        if seen.get(d).copied().unwrap_or(true) {
            return;
        }
        seen[d] = true;
        self.head(doc);
        self.main(doc);
        for annex in &doc.annexes {
            let a = &annex.value;
            self.line(&a.ordinal.map_or("附件".to_owned(), |n| format!("附件{n}")));
            if let Some(t) = &a.title {
                self.line(t);
            }
            for row in a.text.lines() {
                self.line(row);
            }
        }
        for (c, child) in parsed.documents.iter().enumerate() {
            if child.attached_to == Some(d) {
                self.document(parsed, c, seen);
            }
        }
        self.trailer(doc);
    }

    fn head(&mut self, doc: &ParsedDocument) {
        for f in [&doc.copy_number, &doc.classification, &doc.urgency].into_iter().flatten() {
            self.line(&f.value);
        }
        if let Some(b) = &doc.banner {
            for l in b.value.lines() {
                self.line(l);
            }
        }
        let signers = doc.signers.as_ref().map(|s| s.value.join("\u{3000}")).filter(|s| !s.is_empty());
        match (&doc.number, signers) {
            (Some(n), Some(s)) => self.line(&format!("{}\u{3000}\u{3000}签发人：{s}", self.number(&n.value))),
            (Some(n), None) => self.line(&self.number(&n.value)),
            (None, Some(s)) => self.line(&format!("签发人：{s}")),
            (None, None) => {}
        }
        if let Some(t) = &doc.title {
            let chars: Vec<char> = t.value.chars().collect();
            match self.style.title_break.filter(|b| *b > 0 && *b < chars.len()) {
                Some(b) => {
                    let (a, rest) = chars.split_at(b);
                    self.line(&format!("{} ", a.iter().collect::<String>()));
                    self.line(&rest.iter().collect::<String>());
                }
                None => self.line(&t.value),
            }
        }
        if let Some(r) = &doc.main_recipients {
            self.line(&format!("{}：", r.value.written));
        }
    }

    fn main(&mut self, doc: &ParsedDocument) {
        if let Some(b) = &doc.body {
            for (n, p) in b.value.lines().enumerate() {
                self.line(p);
                if self.style.page_numbers && n % 2 == 1 {
                    self.page += 1;
                    self.line(&format!("— {} —", self.page));
                }
            }
        }
        if let Some(c) = &doc.contact {
            self.line(&format!("联系人及电话：{}。", c.value.text));
        }
        let items = &doc.attachments;
        let single = items.len() == 1 && items[0].value.ordinal == 1;
        for (n, item) in items.iter().enumerate() {
            let a = &item.value;
            let number = a.number.as_ref().map(|x| format!("（{x}）")).unwrap_or_default();
            let text = match (n, single) {
                (0, true) => format!("附件：{}{number}", a.title),
                (0, false) => format!("附件：{}. {}{number}", a.ordinal, a.title),
                _ => format!("\u{3000}\u{3000}\u{3000}{}. {}{number}", a.ordinal, a.title),
            };
            self.line(&text);
        }
        for s in &doc.signature {
            self.line(&s.value);
        }
        if let Some(d) = &doc.dated {
            self.line(&self.date(d.value));
        }
        if let Some(n) = &doc.note {
            self.line(&format!("（{}）", n.value));
        }
    }

    fn trailer(&mut self, doc: &ParsedDocument) {
        if let Some(k) = &doc.keywords {
            self.line(&format!("主题词：{}", k.value.join(" ")));
        }
        if let Some(x) = &doc.disclosure {
            self.line(&format!("信息公开选项：{}", disclosure_text(x.value)));
        }
        if let Some(cc) = &doc.cc {
            self.line(&format!("抄送：{}。", cc.value.written));
        }
        let by = doc.printed_by.as_ref().map(|p| p.value.clone()).unwrap_or_default();
        match &doc.printed_on {
            Some(on) if self.style.office_apart && !by.is_empty() => {
                self.line(&by);
                self.line(&format!("{}印发", self.date(on.value)));
            }
            Some(on) => self.line(&format!("{by}\u{3000}\u{3000}{}印发", self.date(on.value))),
            None if !by.is_empty() => self.line(&by),
            None => {}
        }
    }
}
