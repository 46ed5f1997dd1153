//! Source lines: split, trimmed, page numbers dropped, each classified once.
use super::classify::{Kind, classify};

/// A non-blank source line that is not a page number.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// 1-based line number in the source.
    pub no: usize,
    /// The line without leading and trailing whitespace (full-width spaces included) and invisible characters.
    pub text: String,
    /// The line without any whitespace: PDF extraction scatters spaces inside Chinese words.
    pub compact: String,
    /// A blank line or a page number stood between this line and the previous kept one.
    pub gap_before: bool,
    pub kind: Kind,
}

/// Characters that print as nothing and come from Word or PDF extraction (BOM, zero-width spaces and joiners).
fn invisible(c: char) -> bool {
    matches!(c, '\u{feff}' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{00ad}')
}

/// Splits at \n, \r\n and a lone \r (old Mac files), as editors count lines, so line numbers match the file.
fn raw_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(at) => {
                out.push(&rest[..at]);
                let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[at + skip..];
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    out
}

/// The text's lines without blanks and page numbers, classified.
pub(crate) fn split(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut gap = false;
    for (i, raw) in raw_lines(text).into_iter().enumerate() {
        let cleaned: String =
            raw.chars().filter(|c| !invisible(*c)).map(|c| if c.is_control() && c != '\t' { ' ' } else { c }).collect();
        let text = cleaned.trim().to_owned();
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() || is_page_number(&compact) {
            gap = true;
            continue;
        }
        let kind = classify(&text, &compact);
        out.push(Line { no: i + 1, text, compact, gap_before: gap || out.is_empty(), kind });
        gap = false;
    }
    out
}

/// Page numbers as printed by GB/T 9704 (— 3 —) and as PDF tools or other layouts give them (- 3 -, －3－, 第3页,
/// 第3页共12页, 3/12).
pub(crate) fn is_page_number(compact: &str) -> bool {
    let dash = |c: char| matches!(c, '—' | '–' | '-' | '－' | '―' | '一' | '~' | '～' | '─');
    let digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let inner = compact.trim_start_matches(dash).trim_end_matches(dash);
    let dashed = inner.len() < compact.len()
        && compact.starts_with(dash)
        && compact.ends_with(dash)
        && !inner.is_empty()
        && inner.chars().count() <= 4
        && inner.chars().all(digit);
    let of_pages = compact
        .strip_prefix('第')
        .and_then(|r| r.split_once('页'))
        .is_some_and(|(n, tail)| !n.is_empty() && n.chars().all(digit) && page_total(tail));
    let slash = compact.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.chars().count() <= 4
            && b.chars().count() <= 4
            && a.chars().chain(b.chars()).all(digit)
    });
    dashed || of_pages || slash
}

/// The tail of 第3页共12页: nothing, or 共N页.
fn page_total(tail: &str) -> bool {
    tail.is_empty()
        || tail
            .strip_prefix(['共', '，', ','])
            .map(|t| t.trim_start_matches('共'))
            .and_then(|t| t.strip_suffix('页'))
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_follow_every_kind_of_line_break() {
        let lines = split("\u{feff}甲\r\n\r\n乙\r丙\n\n  丁  ");
        let got: Vec<(usize, &str, bool)> = lines.iter().map(|l| (l.no, l.text.as_str(), l.gap_before)).collect();
        assert_eq!(got, vec![(1, "甲", true), (3, "乙", true), (4, "丙", false), (6, "丁", true)]);
    }

    #[test]
    fn page_numbers_are_dropped_and_leave_a_gap() {
        let lines = split("甲\n— 3 —\n乙\n- 12 -\n第2页共5页\n丙\n３/１２\n丁");
        let got: Vec<(usize, bool)> = lines.iter().map(|l| (l.no, l.gap_before)).collect();
        assert_eq!(got, vec![(1, true), (3, true), (6, true), (8, true)]);
    }

    #[test]
    fn numbers_that_are_not_page_numbers_stay() {
        for text in ["2022", "一、", "—", "-12a-", "第三页", "12/", "附件1"] {
            assert!(!is_page_number(text), "{text}");
        }
    }

    #[test]
    fn compact_drops_every_space_and_text_keeps_inner_ones() {
        let lines = split("\u{3000}\u{3000}王高文 0531-51769834。\u{200b}");
        assert_eq!(lines[0].text, "王高文 0531-51769834。");
        assert_eq!(lines[0].compact, "王高文0531-51769834。");
    }
}
