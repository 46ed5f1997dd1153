//! Title derivation for forwarding documents (domain.md §1).

/// The title of a document that forwards one titled `source_title` issued by `source_issuer` (full name):
/// `关于转发` + issuer (only when the title does not start with it) + `《` + title with 《》↔〈〉 swapped + `》的通知`.
pub fn forwarding_title(source_title: &str, source_issuer: &str) -> String {
    format!("关于转发{}的通知", quoted_title(source_title, source_issuer))
}

/// How a forward quotes the document it forwards: issuer (only when the title does not start with it) +
/// `《title》` with inner book-title marks swapped, as in 淄博市财政局《关于转发〈…〉的通知》.
pub fn quoted_title(source_title: &str, source_issuer: &str) -> String {
    let issuer = if source_title.starts_with(source_issuer) { "" } else { source_issuer };
    // Book-title marks alternate with depth: the new outer 《》 pushes every inner level one step down.
    let inner: String = source_title
        .chars()
        .map(|c| match c {
            '《' => '〈',
            '》' => '〉',
            '〈' => '《',
            '〉' => '》',
            other => other,
        })
        .collect();
    format!("{issuer}《{inner}》")
}

/// A title with PDF-extraction noise removed: line breaks and stray spaces dropped, the text otherwise exact.
///
/// Chinese text has no meaningful spaces, so a space next to a CJK character (or any other non-ASCII one, such as
/// 《) goes. Between two ASCII words a space is real (GB/T 9704, Excel 2016), so a run of spaces there becomes one.
/// A line break is dropped wherever it stands: GB/T 9704 §7.3.3 has titles broken between words that stay whole,
/// and a PDF line ends where its text box does, so neither side of a break says a space was there.
pub fn normalize_title(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    // A space seen since the last kept character, and not yet known to be between two ASCII words.
    let mut pending_space = false;
    for c in raw.chars() {
        if c == '\n' || c == '\r' {
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && c.is_ascii_graphic() && out.chars().next_back().is_some_and(|p| p.is_ascii_graphic()) {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVINCE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
    const CITY: &str = "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知";
    const DISTRICT: &str =
        "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》的通知";
    const TOWNSHIP: &str = "关于转发淄博市博山区财政局《关于转发淄博市财政局〈关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知〉的通知》的通知";

    #[test]
    fn the_corpus_chain_reproduces_character_for_character() {
        assert_eq!(forwarding_title(PROVINCE, "山东省财政厅"), CITY);
        assert_eq!(forwarding_title(CITY, "淄博市财政局"), DISTRICT);
    }

    #[test]
    fn a_fourth_level_swaps_the_marks_back() {
        assert_eq!(forwarding_title(DISTRICT, "淄博市博山区财政局"), TOWNSHIP);
    }

    #[test]
    fn quoted_title_is_what_the_attachment_list_shows() {
        assert_eq!(
            quoted_title(CITY, "淄博市财政局"),
            "淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》"
        );
        assert_eq!(quoted_title(PROVINCE, "山东省财政厅"), format!("《{PROVINCE}》"));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;
        use crate::fuzzing::{mark_depth, unforward};

        /// Names from a small alphabet, so that an issuer is now and then a prefix of a title (关于…, 山东省…).
        fn issuer() -> impl Strategy<Value = String> {
            prop_oneof!["[\u{4e00}-\u{9fff}]{2,10}", "[关于转发山东省财政厅局]{1,5}"]
        }

        proptest! {
            #[test]
            fn a_chain_of_any_depth_wraps_alternates_and_unwraps(
                base in prop_oneof!["[\u{4e00}-\u{9fff}]{1,30}", "[关于转发山东省财政厅的通知]{1,12}"],
                issuers in proptest::collection::vec(issuer(), 8),
                depth in 1usize..=8,
                starts_with_issuer in any::<bool>(),
            ) {
                let first = if starts_with_issuer { format!("{}{base}", issuers[0]) } else { base };
                let mut chain = vec![first];
                for issuer in &issuers[..depth] {
                    let next = forwarding_title(chain.last().map_or("", |t| t.as_str()), issuer);
                    chain.push(next);
                }
                let top = &chain[depth];
                prop_assert!(top.starts_with("关于转发") && top.ends_with("的通知"), "{}", top);
                // Balanced, 《》 at odd depths and 〈〉 at even ones, exactly `depth` deep; the outer quote is 《》.
                prop_assert_eq!(mark_depth(top), Some(depth), "{}", top);
                prop_assert_eq!(top.chars().find(|c| "《》〈〉".contains(*c)), Some('《'));
                for k in (0..depth).rev() {
                    let (inner, outer, issuer) = (&chain[k], &chain[k + 1], &issuers[k]);
                    // The issuer's name stands before the quote exactly when the inner title does not start with it.
                    let body = &outer["关于转发".len()..];
                    prop_assert_eq!(body.starts_with(&format!("{issuer}《")), !inner.starts_with(issuer.as_str()));
                    prop_assert_eq!(unforward(outer, issuer), Some(inner.clone()));
                }
            }

            /// Latin words, digits and CJK characters mixed: only single spaces between two ASCII characters stay,
            /// and no other character is lost or added.
            #[test]
            fn normalising_keeps_single_spaces_between_ascii_words_only(
                raw in "[山东省《》GBT/9704a-z0-9 \t\n\r\u{3000}]{0,40}",
            ) {
                let n = normalize_title(&raw);
                let kept: Vec<char> = n.chars().filter(|c| *c != ' ').collect();
                let source: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
                prop_assert_eq!(kept, source);
                let chars: Vec<char> = n.chars().collect();
                for (i, c) in chars.iter().enumerate() {
                    prop_assert!(!c.is_whitespace() || *c == ' ', "{:?}", n);
                    if *c == ' ' {
                        let between = i > 0 && i + 1 < chars.len();
                        prop_assert!(between && chars[i - 1].is_ascii_graphic() && chars[i + 1].is_ascii_graphic(), "{:?}", n);
                    }
                }
                prop_assert_eq!(normalize_title(&n), n);
            }

            #[test]
            fn normalising_removes_every_space_and_nothing_else(raw in "[山东省财政厅 \t\n\r\u{3000}《》〈〉]{0,40}") {
                let n = normalize_title(&raw);
                prop_assert!(!n.chars().any(char::is_whitespace));
                prop_assert_eq!(n.chars().count(), raw.chars().filter(|c| !c.is_whitespace()).count());
                prop_assert_eq!(normalize_title(&n), n);
            }
        }
    }

    #[test]
    fn pdf_noise_is_removed() {
        assert_eq!(normalize_title("山东省财政厅 关于做好政府购买 服务改革重点工作的通知"), PROVINCE);
        assert_eq!(normalize_title("山东省财政厅关于做好政府购买\n服务改革重点工作的通知\r\n"), PROVINCE);
        assert_eq!(
            normalize_title("关于转发淄博市财政局 《关于转发〈山东省财政厅\u{3000}关于做好〉》"),
            "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好〉》"
        );
    }

    #[test]
    fn a_space_between_latin_words_or_digits_is_real() {
        assert_eq!(normalize_title("关于贯彻执行GB/T 9704-2012的通知"), "关于贯彻执行GB/T 9704-2012的通知");
        assert_eq!(normalize_title("关于 GB/T   9704 标准\t的通知"), "关于GB/T 9704标准的通知");
        assert_eq!(normalize_title("关于Excel\u{3000}2016 培训的通知"), "关于Excel 2016培训的通知");
        assert_eq!(normalize_title("《GB/T 9704》 的 解读"), "《GB/T 9704》的解读");
        // A line break is never a space, even between two Latin words.
        assert_eq!(normalize_title("关于GB/T\n9704的通知"), "关于GB/T9704的通知");
        assert_eq!(normalize_title("  GB/T 9704  "), "GB/T 9704");
    }
}
