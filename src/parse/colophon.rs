//! 版记: the closing block of a document (disclosure option, cc list, printing office and date). In a stacked
//! forwarding chain these blocks all come after the innermost document, innermost first.
use std::collections::HashSet;

use chrono::NaiveDate;
use serde::Serialize;

use super::text::{compact, date, is_page_number, labelled, printing};
use super::{Found, Parsed, Warning};

/// One 版记 block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Colophon {
    /// Its first line.
    pub first_line: usize,
    pub disclosure: Option<Found<String>>,
    pub cc: Option<Found<Vec<String>>>,
    pub printed_by: Option<Found<String>>,
    pub printed_on: Option<Found<NaiveDate>>,
}

/// Splits a list as written at ，and ；, keeping 、 (which joins the parts of one group name).
pub fn split_list(text: &str) -> Vec<String> {
    text.split(['，', ',', '；', ';']).map(compact).filter(|s| !s.is_empty()).collect()
}

/// Every 版记 block, and the (0-based) lines they take, which the document parser then skips.
pub fn find(lines: &[&str]) -> (Vec<Colophon>, HashSet<usize>) {
    let mut blocks = vec![];
    let mut claimed = HashSet::new();
    let mut current: Option<Colophon> = None;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if let Some(v) = labelled(line, "信息公开选项") {
            current.get_or_insert_with(|| Colophon { first_line: n, ..Colophon::default() }).disclosure =
                Some(Found::at(v, n, n));
            claimed.insert(i);
        } else if let Some(v) = labelled(line, "抄送") {
            current.get_or_insert_with(|| Colophon { first_line: n, ..Colophon::default() }).cc =
                Some(Found::at(split_list(&v), n, n));
            claimed.insert(i);
        } else if let Some((office, on)) = printing(line) {
            let mut block = current.take().unwrap_or(Colophon { first_line: n, ..Colophon::default() });
            block.printed_on = Some(Found::at(on, n, n));
            block.printed_by = if office.is_empty() {
                office_above(lines, i, &claimed).map(|j| {
                    claimed.insert(j);
                    block.first_line = block.first_line.min(j + 1);
                    Found::at(compact(lines[j]), j + 1, j + 1)
                })
            } else {
                Some(Found::at(office, n, n))
            };
            claimed.insert(i);
            blocks.push(block);
        }
    }
    blocks.extend(current);
    (blocks, claimed)
}

/// The printing office standing alone on the line above a bare `…印发` date: short, no punctuation.
fn office_above(lines: &[&str], i: usize, claimed: &HashSet<usize>) -> Option<usize> {
    let j = (0..i).rev().find(|&j| !lines[j].trim().is_empty() && !is_page_number(lines[j]))?;
    let s = compact(lines[j]);
    let plain = !s.chars().any(|c| "，。：；:,".contains(c));
    (!claimed.contains(&j) && plain && s.chars().count() <= 30 && date(&s).is_none()).then_some(j)
}

/// Gives each document its block: a block inside a document's own lines is its own; the blocks after the innermost
/// document go to it and then outwards, to documents that have none.
pub fn assign(blocks: &[Colophon], starts: &[usize], out: &mut Parsed) {
    let last = starts.len().saturating_sub(1);
    let segment = |line: usize| starts.iter().rposition(|&s| s < line).unwrap_or(0);
    let mut has = vec![false; starts.len()];
    let mut trailing = vec![];
    for b in blocks {
        let k = segment(b.first_line);
        if k < last && !has[k] {
            apply(out, k, b);
            has[k] = true;
        } else {
            trailing.push(b);
        }
    }
    let mut targets = (0..=last).rev().filter(|&k| !has[k]);
    for b in trailing {
        match targets.next() {
            Some(k) => apply(out, k, b),
            None => out.warnings.push(Warning {
                line: Some(b.first_line),
                document: None,
                message: "a 版记 block (disclosure, cc, printing) that belongs to no document".into(),
            }),
        }
    }
}

fn apply(out: &mut Parsed, k: usize, b: &Colophon) {
    if let Some(d) = out.documents.get_mut(k) {
        d.disclosure = b.disclosure.clone().or(d.disclosure.take());
        d.cc = b.cc.clone();
        d.printed_by = b.printed_by.clone();
        d.printed_on = b.printed_on.clone();
    }
}
