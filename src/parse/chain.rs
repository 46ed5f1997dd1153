//! The walk over the lines: which document each line belongs to, and the stack of documents printed inside one
//! another. Elements are read by the `impl Builder` blocks in head.rs, body.rs and trailer.rs; the checks that
//! need the whole text (links, titles, missing elements) are in checks.rs.
use super::classify::{Kind, is_unit_name};
use super::lines::Line;
use super::{Parsed, ParsedDocument, Warning};

/// Where an open document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Header and title read; the body comes next.
    Body,
    /// Body read, no date: it ended at an attachment, a nested document or a 版记.
    AfterBody,
    /// 成文日期 read.
    AfterDate,
    /// Inside an attachment's content.
    Annex,
}

pub(super) struct Builder<'a> {
    pub lines: &'a [Line],
    pub docs: Vec<ParsedDocument>,
    pub phase: Vec<Phase>,
    pub warnings: Vec<Warning>,
    /// Open documents, outermost first. A document is closed by its 版记, or when a sibling starts.
    pub stack: Vec<usize>,
    /// The line just after a lone 附件 heading: a document starting there is an attachment of the open one.
    pub heading_before: Option<usize>,
    /// The document whose 版记 was read last: attachments printed after a 版记 are its own.
    pub closed: Option<usize>,
    /// Documents already warned about a second contact line (one warning each).
    pub extra_contact_told: std::collections::HashSet<usize>,
}

pub(super) fn build(lines: &[Line]) -> Parsed {
    let mut b = Builder {
        lines,
        docs: Vec::new(),
        phase: Vec::new(),
        warnings: Vec::new(),
        stack: Vec::new(),
        heading_before: None,
        closed: None,
        extra_contact_told: Default::default(),
    };
    let mut i = 0;
    while i < lines.len() {
        // Every step consumes at least one line, so the walk ends on any input.
        i = b.step(i).max(i + 1);
    }
    b.finish()
}

impl Builder<'_> {
    pub fn kind(&self, i: usize) -> Option<&Kind> {
        self.lines.get(i).map(|l| &l.kind)
    }

    pub fn warn(&mut self, line: Option<usize>, document: Option<usize>, message: String) {
        self.warnings.push(Warning { line, document, message });
    }

    /// A short description of document `d` for warnings: its number, else its index.
    pub fn name(&self, d: usize) -> String {
        match self.docs.get(d).and_then(|x| x.number.as_ref()) {
            Some(n) => format!("document {d} ({})", n.value),
            None => format!("document {d}"),
        }
    }

    fn step(&mut self, i: usize) -> usize {
        if self.trailer_starts(i) {
            return self.trailer_block(i);
        }
        if self.document_starts(i) {
            return self.open_document(i);
        }
        let Some(&top) = self.stack.last() else {
            if let (Some(Kind::AnnexHeading(_)), Some(c)) = (self.kind(i), self.closed) {
                // Some layouts print the 版记 on the document's last page, before its attachments.
                self.stack.push(c);
                self.phase[c] = Phase::AfterDate;
                let message = format!("the attachments of {} follow its 版记", self.name(c));
                self.warn(Some(self.lines[i].no), Some(c), message);
                return self.after_main(c, i);
            }
            if self.docs.is_empty() {
                // Text before the first banner (a web page's header, a file name) is skipped when a document
                // start follows shortly; otherwise the text is one document without banner or number.
                if let Some(start) = (i + 1..self.lines.len().min(i + 6)).find(|j| self.document_starts(*j)) {
                    // A web page prints the title above the number; anything else before the header is noise.
                    if matches!(self.kind(start), Some(Kind::Number { .. })) {
                        let d = self.docs.len();
                        let next = self.open_document(start);
                        let above = self.docs[d].title.is_none() && self.title_above(d, i, start);
                        if !above {
                            self.stray(i, start, None, "text before the first document");
                        }
                        return next;
                    }
                    self.stray(i, start, None, "text before the first document");
                    return start;
                }
                return self.open_document(i);
            }
            let end = self.next_break(i);
            self.stray(i, end, None, "text after the last document's 版记, outside any document");
            return end;
        };
        match self.phase[top] {
            Phase::Body => self.main_part(top, i),
            Phase::AfterBody | Phase::AfterDate => self.after_main(top, i),
            Phase::Annex => self.annex_content(top, i),
        }
    }

    /// The next line at or after `i` where something new starts: a 版记, a document, an attachment heading.
    pub fn next_break(&self, i: usize) -> usize {
        (i..self.lines.len()).find(|j| self.is_break(*j)).unwrap_or(self.lines.len())
    }

    pub fn is_break(&self, j: usize) -> bool {
        matches!(self.kind(j), Some(Kind::AnnexHeading(_))) || self.trailer_starts(j) || self.document_starts(j)
    }

    /// One warning for lines `from..to` that belong to no element.
    pub fn stray(&mut self, from: usize, to: usize, doc: Option<usize>, what: &str) {
        let (Some(a), Some(b)) = (self.lines.get(from), self.lines.get(to.saturating_sub(1).max(from))) else {
            return;
        };
        let message = format!("lines {}–{}: {what}; not read as any element", a.no, b.no);
        self.warn(Some(a.no), doc, message);
    }

    /// A one-name line (no tabs, no wide gaps) such as a printing office or a signing unit.
    pub fn single_unit_name(&self, j: usize) -> bool {
        self.lines.get(j).is_some_and(|l| {
            !l.text.contains('\t') && super::head::split_wide(&l.text).len() == 1 && is_unit_name(&l.compact)
        })
    }

    /// Does a new document start at line `i`? A banner or a number begins one where a document can begin: at the
    /// top of the text, after every open document was closed, after a lone 附件 heading, or — for a banner — when
    /// its number follows, which tells it from a sentence that ends in 文件.
    pub fn document_starts(&self, i: usize) -> bool {
        let free = self.stack.is_empty() || self.heading_before == Some(i);
        let mut j = i;
        while matches!(self.kind(j), Some(Kind::CopyNumber | Kind::Classification | Kind::Urgency)) && j < i + 3 {
            j += 1;
        }
        let marked = j > i;
        let number_at = |k: usize| matches!(self.kind(k), Some(Kind::Number { .. } | Kind::Signer(_)));
        match self.kind(j) {
            Some(Kind::Banner(name)) => !name.is_empty() && (free || marked || number_at(j + 1)),
            Some(Kind::Number { .. }) => free || marked,
            Some(Kind::Other) if self.single_unit_name(j) => {
                // Joint banners print one issuer a line above 文件; a letter (函) prints the name alone.
                let mut k = j + 1;
                while self.single_unit_name(k) && k < j + 4 {
                    k += 1;
                }
                match self.kind(k) {
                    Some(Kind::Banner(_)) => free || marked || number_at(k + 1),
                    Some(Kind::Number { number: Ok(_), .. }) => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Starts a document at line `i`, nested in the open one when that one attaches it, and reads its header,
    /// title and main recipients.
    fn open_document(&mut self, i: usize) -> usize {
        let after_heading = self.heading_before == Some(i);
        self.heading_before = None;
        let mut attached_to = self.stack.last().copied();
        if let Some(p) = attached_to
            && !after_heading
            && !self.attaches(p)
        {
            // The open document does not carry attachments: this one follows it rather than sitting inside it.
            self.stack.pop();
            attached_to = self.docs[p].attached_to;
        }
        let d = self.docs.len();
        let depth = attached_to.map_or(0, |p| self.docs[p].depth + 1);
        self.docs.push(ParsedDocument { depth, attached_to, ..Default::default() });
        self.phase.push(Phase::Body);
        if let Some(p) = attached_to
            && self.docs[p].forwards.is_none()
        {
            self.docs[p].forwards = Some(d);
        }
        self.stack.push(d);
        let j = self.header(d, i);
        let next = self.title_and_recipients(d, j);
        if next <= i && next < self.lines.len() {
            // Nothing read as header or title (a bannerless text opening with a sentence): the first line is
            // body text, and must be read as such here, since the walk moves past a line that consumed nothing.
            return self.main_part(d, next);
        }
        next
    }

    /// Whether document `p` announces attachments: an attachment list, or a title that forwards or issues one.
    fn attaches(&self, p: usize) -> bool {
        let doc = &self.docs[p];
        !doc.attachments.is_empty()
            || doc.title.as_ref().is_some_and(|t| ["转发", "印发", "批转"].iter().any(|w| t.value.contains(w)))
    }

    fn finish(mut self) -> Parsed {
        if self.docs.is_empty() {
            self.warn(None, None, "no document found: the text is empty".into());
        }
        self.checks();
        for d in (0..self.docs.len()).rev() {
            let span = super::body::span(&self.docs[d]);
            let doc = &mut self.docs[d];
            doc.lines = merge(doc.lines, span);
            if let Some(p) = doc.attached_to {
                let inner = doc.lines;
                self.docs[p].lines = merge(self.docs[p].lines, inner);
            }
        }
        Parsed { documents: self.docs, warnings: self.warnings }
    }
}

fn merge(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    match (a, b) {
        ((0, _), b) => b,
        (a, (0, _)) => a,
        (a, b) => (a.0.min(b.0), a.1.max(b.1)),
    }
}
