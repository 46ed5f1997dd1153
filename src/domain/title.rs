//! Title derivation for forwarding documents (domain.md §1).

/// The title of a document that forwards one titled `source_title` issued by `source_issuer` (full name):
/// `关于转发` + issuer (only when the title does not start with it) + `《` + title with 《》↔〈〉 swapped + `》的通知`.
pub fn forwarding_title(source_title: &str, source_issuer: &str) -> String {
    let _ = (source_title, source_issuer);
    unimplemented!("filled in by the domain work")
}

/// A title with PDF-extraction noise removed: line breaks and stray spaces dropped, the text otherwise exact.
pub fn normalize_title(raw: &str) -> String {
    let _ = raw;
    unimplemented!("filled in by the domain work")
}

/// How a forward quotes the document it forwards: issuer (only when the title does not start with it) +
/// `《title》` with inner book-title marks swapped, as in 淄博市财政局《关于转发〈…〉的通知》.
pub fn quoted_title(source_title: &str, source_issuer: &str) -> String {
    let _ = (source_title, source_issuer);
    unimplemented!("filled in by the domain work")
}
