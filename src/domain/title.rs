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
