//! One document's own lines: header (banner, number, signer, title, main recipients), body, attachment list,
//! contact, signature and date, note, and attachments printed after it.
use std::collections::HashSet;

use super::colophon::split_list;
use super::text::{
    banner, compact, date, is_heading, is_page_number, labelled, looks_like_number, number_line, numbered_item, squeeze,
};
use super::{AttachedText, AttachmentItem, Found, ParsedDocument};

/// Title endings: the genres of the 2012 regulation and the documents they commonly issue.
const GENRES: [&str; 22] = [
    "通知", "通报", "意见", "决定", "决议", "命令", "令", "公报", "公告", "通告", "报告", "请示", "批复", "议案", "函",
    "纪要", "办法", "方案", "规定", "规划", "细则", "答复",
];

/// Where documents start: the first line with text, then every banner or number line that opens another document.
pub fn starts(lines: &[&str]) -> Vec<usize> {
    let significant = |i: &usize| !lines[*i].trim().is_empty() && !is_page_number(lines[*i]);
    let Some(first) = (0..lines.len()).find(significant) else { return vec![] };
    let mut starts = vec![first];
    // The first number line after a start belongs to that document's header.
    let mut header_number_seen = false;
    let mut since_start = 0;
    for i in first..lines.len() {
        if !significant(&i) {
            continue;
        }
        since_start += 1;
        let is_number = number_line(lines[i]).is_some();
        if i > first && banner(lines[i]).is_some() && next_is_number(lines, i) {
            starts.push(i);
            (header_number_seen, since_start) = (false, 1);
            continue;
        }
        if is_number {
            if !header_number_seen && since_start <= 4 {
                header_number_seen = true;
            } else {
                // A number standing on its own line, past the header: a document without a banner begins.
                starts.push(i);
                (header_number_seen, since_start) = (true, 1);
            }
        }
    }
    starts
}

fn next_is_number(lines: &[&str], i: usize) -> bool {
    lines
        .iter()
        .skip(i + 1)
        .filter(|l| !l.trim().is_empty() && !is_page_number(l))
        .take(2)
        .any(|l| number_line(l).is_some() || looks_like_number(l))
}

type Warnings = Vec<(Option<usize>, String)>;

/// The significant lines of a document: (1-based line number, text).
fn significant<'a>(lines: &[&'a str], start: usize, end: usize, claimed: &HashSet<usize>) -> Vec<(usize, &'a str)> {
    (start..end)
        .filter(|i| !claimed.contains(i) && !lines[*i].trim().is_empty() && !is_page_number(lines[*i]))
        .map(|i| (i + 1, lines[i]))
        .collect()
}

/// Parses the lines `start..end` (0-based) of one document, skipping `claimed` lines (版记).
pub fn parse(lines: &[&str], start: usize, end: usize, claimed: &HashSet<usize>) -> (ParsedDocument, Warnings) {
    let ls = significant(lines, start, end, claimed);
    let mut d = ParsedDocument { lines: (start + 1, ls.last().map_or(start + 1, |l| l.0)), ..Default::default() };
    let mut w: Warnings = vec![];
    let mut p = header(&ls, &mut d, &mut w);
    let mut paragraphs: Vec<(usize, String)> = vec![];
    while let Some(&(n, line)) = ls.get(p) {
        let s = squeeze(line);
        if s.starts_with("附件：") || s.starts_with("附件:") {
            p = attachment_list(&ls, p, &mut d);
        } else if s.starts_with("联系人") || s.starts_with("（联系人") {
            // Spaces between a name and a number are meaningful here; only the label and the punctuation go.
            let c = line.trim().trim_start_matches('（').trim_end_matches(['）', '。']);
            let value = c.split_once(['：', ':']).map_or(c, |(_, v)| v).trim();
            d.contact = Some(Found::at(value.to_owned(), n, n));
            p += 1;
        } else if let Some(on) = date(line) {
            d.dated = Some(Found::at(on, n, n));
            p += 1;
        } else if ls.get(p + 1).is_some_and(|(_, next)| date(next).is_some()) && signature_like(&s) {
            let mut names = vec![compact(line)];
            // A joint document (联合行文) signs with several names, one per line.
            while let Some((pn, prev)) = paragraphs.last() {
                if *pn + 2 >= n && signature_like(prev) && names.len() < 4 {
                    names.insert(0, compact(prev));
                    paragraphs.pop();
                } else {
                    break;
                }
            }
            let first = n + 1 - names.len();
            d.signature = Some(Found::at(names, first.min(n), n));
            p += 1;
        } else if d.dated.is_some() && (labelled(line, "附注").is_some() || (s.starts_with('（') && s.ends_with('）')))
        {
            let note =
                labelled(line, "附注").unwrap_or_else(|| s.trim_start_matches('（').trim_end_matches('）').into());
            d.note = Some(Found::at(note, n, n));
            p += 1;
        } else if let Some(ordinal) = attachment_heading(&s) {
            p = attached(&ls, p, ordinal, &mut d, &mut w);
        } else if d.dated.is_some() || d.signature.is_some() {
            w.push((Some(n), format!("unrecognised line after the signature: {}", compact(line))));
            p += 1;
        } else {
            paragraphs.push((n, line.trim().to_owned()));
            p += 1;
        }
    }
    if let (Some(first), Some(last)) = (paragraphs.first(), paragraphs.last()) {
        d.body = Some(Found::at(mend(&paragraphs), first.0, last.0));
    } else {
        w.push((Some(d.lines.0), "no body text (正文) found".into()));
    }
    if d.issuer.is_none()
        && let Some(sig) = &d.signature
        && let Some(name) = sig.value.last()
    {
        d.issuer = Some(Found::at(name.clone(), sig.first_line, sig.last_line));
    }
    (d, w)
}

/// Banner, number and signer, title, main recipients. Returns the index of the first body line.
fn header(ls: &[(usize, &str)], d: &mut ParsedDocument, w: &mut Warnings) -> usize {
    let mut p = 0;
    if let Some(&(n, line)) = ls.first()
        && let Some(issuer) = banner(line)
    {
        d.banner = Some(Found::at(compact(line), n, n));
        d.issuer = Some(Found::at(issuer, n, n));
        p = 1;
    }
    for (q, &(n, line)) in ls.iter().enumerate().take(p + 3).skip(p) {
        if let Some(signer) = labelled(line, "签发人") {
            d.signer = Some(Found::at(signer, n, n));
            continue;
        }
        if let Some((number, signer)) = number_line(line) {
            d.number = Some(Found::at(number.to_string(), n, n));
            if let Some(s) = signer {
                d.signer = Some(Found::at(s, n, n));
            }
            p = q + 1;
            break;
        }
        if looks_like_number(line) {
            w.push((Some(n), format!("cannot read the document number {}", compact(line))));
            p = q + 1;
            break;
        }
    }
    let recipients_at = (p..(p + 8).min(ls.len())).find(|&q| recipients_line(ls[q].1));
    let limit = recipients_at.unwrap_or((p + 4).min(ls.len()));
    let mut title = String::new();
    let mut title_end = p;
    for (q, &(_, line)) in ls.iter().enumerate().take(limit).skip(p) {
        title.push_str(&compact(line));
        title_end = q + 1;
        if GENRES.iter().any(|g| title.ends_with(g)) {
            break;
        }
    }
    if recipients_at.is_none() && !GENRES.iter().any(|g| title.ends_with(g)) {
        // No recipients and no genre word: only the first line is safely the title.
        title = ls.get(p).map(|l| compact(l.1)).unwrap_or_default();
        title_end = (p + 1).min(ls.len());
    }
    if !title.is_empty() {
        d.title = Some(Found::at(title, ls[p].0, ls[title_end - 1].0));
    }
    match recipients_at {
        Some(r) if r >= title_end => {
            let written: String = ls[title_end..=r].iter().map(|l| compact(l.1)).collect();
            let written = written.trim_end_matches(['：', ':']);
            d.main_recipients = Some(Found::at(split_list(written), ls[title_end].0, ls[r].0));
            r + 1
        }
        _ => {
            w.push((ls.get(title_end).map(|l| l.0), "no main recipients (主送, a line ending with ：)".into()));
            title_end
        }
    }
}

fn recipients_line(line: &str) -> bool {
    let s = compact(line);
    (s.ends_with('：') || s.ends_with(':'))
        && !s.starts_with("附件")
        && !s.starts_with("联系人")
        && s.chars().count() <= 160
        && !s.contains('。')
}

fn signature_like(s: &str) -> bool {
    let s = compact(s);
    (2..=30).contains(&s.chars().count())
        && !s.chars().any(|c| "。，：；:,《》".contains(c))
        && !is_heading(&s)
        && !s.starts_with("附件")
}

/// `附件` alone or `附件1` / `附件 2`: the heading over an attachment printed after the document.
fn attachment_heading(s: &str) -> Option<u32> {
    let rest = s.strip_prefix("附件")?;
    if rest.is_empty() {
        return Some(1);
    }
    (rest.len() <= 3 && rest.chars().all(|c| c.is_ascii_digit())).then(|| rest.parse().ok()).flatten()
}

/// The attachment list starting at `p`; returns the index after it.
fn attachment_list(ls: &[(usize, &str)], p: usize, d: &mut ParsedDocument) -> usize {
    let (n, line) = ls[p];
    let c = compact(line);
    let rest = c.split_once(['：', ':']).map_or("", |(_, r)| r).to_owned();
    let mut q = p + 1;
    let mut push = |ordinal: u32, title: String, first: usize, last: usize| {
        d.attachments.push(Found::at(AttachmentItem { ordinal, title }, first, last));
    };
    if rest.is_empty() || numbered_item(&rest).is_some() {
        let mut items: Vec<(u32, String, usize, usize)> = vec![];
        if let Some((o, t)) = numbered_item(&rest) {
            items.push((o, t, n, n));
        }
        while let Some(&(m, next)) = ls.get(q) {
            if let Some((o, t)) = numbered_item(next) {
                items.push((o, t, m, m));
            } else if let Some(last) = items.last_mut().filter(|i| unbalanced(&i.1)) {
                last.1.push_str(&compact(next));
                last.3 = m;
            } else {
                break;
            }
            q += 1;
        }
        for (o, t, first, last) in items {
            push(o, t, first, last);
        }
    } else {
        let mut title = rest;
        let mut last = n;
        while unbalanced(&title)
            && let Some(&(m, next)) = ls.get(q)
        {
            title.push_str(&compact(next));
            last = m;
            q += 1;
        }
        push(1, title, n, last);
    }
    q
}

fn unbalanced(s: &str) -> bool {
    let count = |c: char| s.chars().filter(|x| *x == c).count();
    count('《') != count('》') || count('（') != count('）')
}

/// An attachment printed after the document: heading, title line, content up to the next heading.
fn attached(ls: &[(usize, &str)], p: usize, ordinal: u32, d: &mut ParsedDocument, w: &mut Warnings) -> usize {
    let (n, _) = ls[p];
    let Some(&(_, title)) = ls.get(p + 1) else {
        w.push((Some(n), "an attachment heading (附件) with nothing after it".into()));
        return p + 1;
    };
    let mut q = p + 2;
    let mut text = vec![];
    while let Some(&(_, line)) = ls.get(q) {
        if attachment_heading(&squeeze(line)).is_some() {
            break;
        }
        text.push(line.trim_end().to_owned());
        q += 1;
    }
    let last = ls.get(q - 1).map_or(n, |l| l.0);
    d.attached.push(Found::at(AttachedText { ordinal, title: compact(title), text: text.join("\n") }, n, last));
    q
}

/// Paragraphs with page breaks mended: a paragraph that stops without closing punctuation continues in the next,
/// unless either is a heading.
fn mend(paragraphs: &[(usize, String)]) -> String {
    let mut out: Vec<String> = vec![];
    for (_, p) in paragraphs {
        match out.last_mut() {
            Some(prev) if !ends_sentence(prev) && !is_heading(prev) && !is_heading(p) => prev.push_str(p.trim()),
            _ => out.push(p.trim().to_owned()),
        }
    }
    out.join("\n")
}

fn ends_sentence(p: &str) -> bool {
    p.trim_end().ends_with(['。', '！', '？', '；', '：', '”', '…'])
}
