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
/// Chinese titles have no meaningful spaces, so every whitespace character goes.
pub fn normalize_title(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace()).collect()
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
}
