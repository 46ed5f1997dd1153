//! The checks that need the whole text: issuers from signatures, links between attachment lists and nested
//! documents, titles against the forwarding rule, elements a document must have.
use super::chain::Builder;
use super::{AttachmentItem, ParsedDocument};
use crate::domain::title::{forwarding_title, quoted_title};

/// Whether an attachment-list entry names `doc`: by its number, or by its title as written, in 《》, or quoted
/// with its issuer's name as a forward quotes it.
fn names(item: &AttachmentItem, doc: &ParsedDocument) -> bool {
    let title = doc.title.as_ref().map(|t| t.value.as_str()).unwrap_or_default();
    let issuer = doc.issuer.as_ref().map(|t| t.value.as_str()).unwrap_or_default();
    let number = doc.number.as_ref().map(|n| &n.value);
    let by_number = number.is_some() && item.number.as_ref() == number;
    let t = &item.title;
    by_number
        || (!title.is_empty() && (t == title || *t == format!("《{title}》") || *t == quoted_title(title, issuer)))
}

impl Builder<'_> {
    pub(super) fn checks(&mut self) {
        self.fill_issuers();
        self.relink_listed();
        self.link_attachments();
        self.check_titles();
        self.check_signature();
        self.check_recipients();
        self.check_missing();
    }

    fn fill_issuers(&mut self) {
        for d in 0..self.docs.len() {
            let doc = &mut self.docs[d];
            if doc.issuer.is_none()
                && let Some(sig) = doc.signature.first()
            {
                doc.issuer = Some(sig.clone());
                let line = sig.lines.0;
                let message = format!("{}: no banner; the issuer is taken from the signature", self.name(d));
                self.warn(Some(line), Some(d), message);
            }
        }
    }

    /// Points attachment-list entries at the nested document they name (by number, or by title as quoted).
    fn link_attachments(&mut self) {
        let pairs: Vec<(usize, usize)> =
            self.docs.iter().enumerate().filter_map(|(c, doc)| doc.attached_to.map(|d| (d, c))).collect();
        for (d, c) in pairs {
            let child = self.docs[c].clone();
            if let Some(item) =
                self.docs[d].attachments.iter_mut().find(|i| i.value.document.is_none() && names(&i.value, &child))
            {
                item.value.document = Some(c);
                continue;
            }
            // Printed inside it but not listed: the list names something else, or the wrong document was attached.
            let carried =
                child.title.as_ref().map_or_else(|| self.name(c), |t| format!("{} 「{}」", self.name(c), t.value));
            let (line, message) = match (self.docs[d].attachments.first(), self.docs[d].attachments.last()) {
                (Some(first), Some(last)) => (
                    Some(first.lines.0),
                    format!(
                        "{}: its attachment list (lines {}–{}) does not name {carried}, the document it carries",
                        self.name(d),
                        first.lines.0,
                        last.lines.1
                    ),
                ),
                _ => (
                    // Spans are merged only after the checks: the child's first element says where it starts.
                    [&child.banner, &child.title]
                        .into_iter()
                        .flatten()
                        .map(|f| f.lines.0)
                        .chain(child.number.as_ref().map(|n| n.lines.0))
                        .min(),
                    format!("{}: it has no attachment list, yet carries {carried}", self.name(d)),
                ),
            };
            self.warn(line, Some(d), message);
        }
    }

    /// The unit that signs (发文机关署名) is the one the banner names: GB/T 9704 allows the full name or a
    /// standard short form in either place, so one name starting with the other counts as the same unit.
    fn check_signature(&mut self) {
        for d in 0..self.docs.len() {
            let doc = &self.docs[d];
            let (Some(banner), Some(issuer)) = (doc.banner.as_ref(), doc.issuer.as_ref()) else { continue };
            if doc.signature.is_empty() {
                continue;
            }
            let same = |s: &str| s.starts_with(issuer.value.as_str()) || issuer.value.starts_with(s);
            if doc.signature.iter().any(|s| same(&s.value)) {
                continue;
            }
            let signed: Vec<&str> = doc.signature.iter().map(|s| s.value.as_str()).collect();
            let line = doc.signature[0].lines.0;
            let message = format!(
                "{}: signed by 「{}」 (line {line}), not by 「{}」, the issuer its banner names (line {})",
                self.name(d),
                signed.join("、"),
                issuer.value,
                banner.lines.0
            );
            self.warn(Some(line), Some(d), message);
        }
    }

    /// Every document names its main recipients, except the genres GB/T 9704 §7.3.2 lets go without: those
    /// published to all (公告, 通告, 公报) and the ones that address no one (命令, 决议, 纪要).
    fn check_recipients(&mut self) {
        const TO_ALL: [&str; 7] = ["公告", "通告", "公报", "命令", "令", "决议", "纪要"];
        for d in 0..self.docs.len() {
            let doc = &self.docs[d];
            let Some(title) = doc.title.as_ref() else { continue };
            if doc.main_recipients.is_some() || TO_ALL.iter().any(|g| title.value.ends_with(g)) {
                continue;
            }
            let line = title.lines.1;
            let message = format!("{}: no main recipients (主送) after its title (line {line})", self.name(d));
            self.warn(Some(line), Some(d), message);
        }
    }

    /// An outermost document that an earlier, closed document lists as its attachment (by number or quoted title)
    /// is that document's attachment: some layouts print the 版记 before the attachments.
    fn relink_listed(&mut self) {
        for c in 1..self.docs.len() {
            if self.docs[c].attached_to.is_some() {
                continue;
            }
            let child = self.docs[c].clone();
            // The lister is close before: its own attachments and nested documents at most.
            let lister = (c.saturating_sub(8)..c).rev().find(|d| {
                let doc = &self.docs[*d];
                doc.forwards.is_none() && doc.attachments.iter().any(|i| names(&i.value, &child))
            });
            if let Some(d) = lister {
                self.docs[c].attached_to = Some(d);
                self.docs[d].forwards = Some(c);
                let message = format!(
                    "{} follows the 版记 of {}, which lists it as its attachment; read as that attachment",
                    self.name(c),
                    self.name(d)
                );
                let doc = &self.docs[c];
                let line = doc.banner.as_ref().map(|f| f.lines.0).or(doc.number.as_ref().map(|f| f.lines.0));
                self.warn(line, Some(c), message);
            }
        }
        for c in 0..self.docs.len() {
            self.docs[c].depth = self.docs[c].attached_to.map_or(0, |p| self.docs[p].depth + 1);
        }
    }

    /// A forwarding document's title must be the one derived from the document it forwards (domain.md §1). The
    /// issuer's own name in front (淄博市财政局关于转发…) is the long title form GB/T 9704 §7.3.1 allows.
    fn check_titles(&mut self) {
        for d in 0..self.docs.len() {
            let Some(title) = self.docs[d].title.as_ref().map(|t| (t.value.clone(), t.lines.0)) else { continue };
            let Some(f) = self.docs[d].forwards else {
                if title.0.contains("转发") {
                    let message = format!(
                        "{}: the title says it forwards a document, but no forwarded document follows in the text",
                        self.name(d)
                    );
                    self.warn(Some(title.1), Some(d), message);
                }
                continue;
            };
            if !title.0.contains("转发") {
                // 印发 or 批转 an attached document is not forwarding it; the rule does not apply.
                continue;
            }
            let inner_title = self.docs[f].title.as_ref().map(|t| t.value.clone());
            let inner_issuer = self.docs[f].issuer.as_ref().map(|t| t.value.clone());
            let (Some(inner_title), Some(inner_issuer)) = (inner_title, inner_issuer) else {
                let message = format!(
                    "{}: its title cannot be checked, the forwarded {} has no title or issuer",
                    self.name(d),
                    self.name(f)
                );
                self.warn(Some(title.1), Some(d), message);
                continue;
            };
            let derived = forwarding_title(&inner_title, &inner_issuer);
            let own = self.docs[d].issuer.as_ref().map(|t| t.value.clone()).unwrap_or_default();
            if title.0 != derived && title.0 != format!("{own}{derived}") {
                let message = format!(
                    "{}: title 「{}」 differs from 「{derived}」, the title derived from the forwarded {}",
                    self.name(d),
                    title.0,
                    self.name(f)
                );
                self.warn(Some(title.1), Some(d), message);
            }
        }
    }

    fn check_missing(&mut self) {
        for d in 0..self.docs.len() {
            let doc = &self.docs[d];
            let first = doc.banner.as_ref().or(doc.title.as_ref()).map(|f| f.lines.0);
            let mut missing = Vec::new();
            if doc.number.is_none() {
                missing.push("document number (发文字号)");
            }
            if doc.title.is_none() {
                missing.push("title (标题)");
            }
            if doc.issuer.is_none() {
                missing.push("issuer (banner or signature)");
            }
            if doc.dated.is_none() {
                missing.push("date (成文日期)");
            }
            if !missing.is_empty() {
                let message = format!("{}: no {} found", self.name(d), missing.join(", no "));
                self.warn(first, Some(d), message);
            }
        }
    }
}
