//! What a line looks like on its own, before its place in a document is known.
use chrono::NaiveDate;

use super::dates::{parse_date, split_trailing_date};
use crate::domain::number::DocNumber;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Anything else: title, body, table row, name.
    Other,
    /// 发文机关标志 ending in 文件; holds the issuer's name (empty when the line is 文件 alone).
    Banner(String),
    /// A line that is a document number, with the signer printed beside it (GB/T 9704 §7.2.4 for 上行文).
    Number { number: Result<DocNumber, String>, signers: Option<String> },
    /// 签发人：…
    Signer(String),
    /// 份号: six digits.
    CopyNumber,
    /// 秘密★1年, 机密, 绝密★长期.
    Classification,
    /// 特急, 加急 (特提, 平急 on telegrams).
    Urgency,
    /// A line that is a date only (成文日期).
    Date(Result<NaiveDate, String>),
    /// …年…月…日印发, with the printing office before it when on the same line.
    Printed { by: String, on: Result<NaiveDate, String> },
    /// 信息公开选项：… (also 公开方式：, 公开属性：).
    Disclosure(String),
    /// 抄送：…
    Cc(String),
    /// 附件：… (the attachment list), with what follows the colon.
    AttachList(String),
    /// A heading 附件, 附件1, 附件二 alone on its line, before an attachment's own pages.
    AnnexHeading(Option<u32>),
    /// 联系人…, 联系电话…, optionally in brackets.
    Contact,
    /// 主题词：… (版记 of documents laid out by GB/T 9704-1999).
    Keywords(String),
}

pub(crate) fn classify(text: &str, compact: &str) -> Kind {
    if let Some(kind) = keyword_line(text, compact) {
        return kind;
    }
    if let Some(date) = parse_date(compact) {
        return Kind::Date(date);
    }
    if let Some(head) = compact.strip_suffix("印发")
        && let Some((by, on)) = split_trailing_date(head)
    {
        return Kind::Printed { by: by.to_owned(), on };
    }
    if let Some(kind) = number_line(text, compact) {
        return kind;
    }
    if let Some(name) = compact.strip_suffix("文件")
        && (name.is_empty() || is_unit_name(name))
    {
        return Kind::Banner(name.to_owned());
    }
    if compact.len() == 6 && compact.chars().all(|c| c.is_ascii_digit()) {
        return Kind::CopyNumber;
    }
    if ["秘密", "机密", "绝密"].iter().any(|w| compact.starts_with(w))
        && (compact.chars().count() == 2 || compact.contains('★'))
    {
        return Kind::Classification;
    }
    if ["特急", "加急", "特提", "平急"].contains(&compact) {
        return Kind::Urgency;
    }
    Kind::Other
}

/// What follows `label` and a colon (full- or half-width) in `text`, when `compact` starts with the label.
pub(crate) fn after_label<'a>(text: &'a str, compact: &str, label: &str) -> Option<&'a str> {
    let rest = compact.strip_prefix(label)?;
    if !rest.starts_with(['：', ':']) {
        return None;
    }
    // The label may be printed letter-spaced (抄　送：), so find the colon in the original text.
    let at = text.find(['：', ':'])?;
    let colon_len = text[at..].chars().next().map_or(1, char::len_utf8);
    Some(text[at + colon_len..].trim())
}

fn keyword_line(text: &str, compact: &str) -> Option<Kind> {
    for label in ["信息公开选项", "公开方式", "公开属性"] {
        if let Some(rest) = after_label(text, compact, label) {
            return Some(Kind::Disclosure(rest.trim_end_matches(['。', '.']).to_owned()));
        }
    }
    // 抄报 (to units above) is the 1999 layout's other cc line.
    for label in ["抄送", "抄报"] {
        if let Some(rest) = after_label(text, compact, label) {
            return Some(Kind::Cc(rest.to_owned()));
        }
    }
    if let Some(rest) = after_label(text, compact, "附件") {
        return Some(Kind::AttachList(rest.to_owned()));
    }
    if let Some(rest) = after_label(text, compact, "签发人") {
        return Some(Kind::Signer(rest.to_owned()));
    }
    if let Some(rest) = compact.strip_prefix("附件") {
        if rest.is_empty() {
            return Some(Kind::AnnexHeading(None));
        }
        if let Some(n) = ordinal(rest) {
            return Some(Kind::AnnexHeading(Some(n)));
        }
        // 附件1：title, one entry a line, is another way to write the attachment list.
        if let Some((n, title)) = rest.split_once(['：', ':']).and_then(|(n, t)| ordinal(n).map(|n| (n, t))) {
            let title = text.split_once(['：', ':']).map_or(title, |(_, t)| t.trim());
            return Some(if title.is_empty() {
                Kind::AnnexHeading(Some(n))
            } else {
                Kind::AttachList(format!("{n}. {title}"))
            });
        }
    }
    if let Some(rest) = after_label(text, compact, "主题词") {
        return Some(Kind::Keywords(rest.to_owned()));
    }
    let unbracketed = compact.trim_start_matches(['（', '(']);
    if ["联系人", "联系电话", "联系方式"].iter().any(|w| unbracketed.starts_with(w)) {
        return Some(Kind::Contact);
    }
    None
}

/// 1 to 99 in Arabic digits or Chinese numerals, and nothing else.
pub(crate) fn ordinal(text: &str) -> Option<u32> {
    let digits: String = text.chars().map(half_width).collect();
    if !digits.is_empty() && digits.len() <= 2 && digits.chars().all(|c| c.is_ascii_digit()) {
        return digits.parse().ok().filter(|n| *n > 0);
    }
    const CN: [char; 9] = ['一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let value = |c: char| CN.iter().position(|x| *x == c).map(|i| i as u32 + 1);
    match text.chars().collect::<Vec<_>>()[..] {
        ['十'] => Some(10),
        [a] => value(a),
        ['十', b] => value(b).map(|b| 10 + b),
        [a, '十'] => value(a).map(|a| a * 10),
        [a, '十', b] => value(a).zip(value(b)).map(|(a, b)| a * 10 + b),
        _ => None,
    }
}

pub(crate) fn half_width(c: char) -> char {
    match c {
        '０'..='９' => char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c),
        '［' => '[',
        '］' => ']',
        _ => c,
    }
}

const OPEN_BRACKETS: [char; 6] = ['〔', '[', '【', '（', '(', '［'];

/// A line holding a document number and nothing else but, possibly, 签发人：….
fn number_line(text: &str, compact: &str) -> Option<Kind> {
    let (number_part, signers) = match compact.find("签发人") {
        Some(at) => {
            let names = text.find("签发人").map(|t| text[t + "签发人".len()..].trim_start_matches(['：', ':']).trim());
            (&compact[..at], Some(names.unwrap_or_default().to_owned()))
        }
        None => (compact, None),
    };
    let looks = number_part.ends_with('号')
        && number_part.chars().count() <= 30
        && number_part.chars().any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
        && number_part.contains(OPEN_BRACKETS)
        && !number_part.contains(['。', '，', '：', '《', '、']);
    if !looks {
        return None;
    }
    let normalised: String = number_part.chars().map(half_width).collect();
    Some(Kind::Number { number: DocNumber::parse(&normalised).map_err(|e| e.to_string()), signers })
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(u32::from(c), 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// The last character of the names of units that issue documents: 厅, 局, 委员会, 人民政府, 办公室, 中心, ….
const UNIT_ENDINGS: &str = "厅局委会院部办府室处所署司社组站队馆团行央学校心区县市镇乡道庭";

/// A unit's name such as 淄博市博山区财政局 or 中共山东省委: Chinese characters (brackets and · allowed) ending
/// as unit names end. Used for banners, signatures and printing offices.
pub(crate) fn is_unit_name(compact: &str) -> bool {
    let n = compact.chars().count();
    (2..=40).contains(&n)
        && compact.chars().all(|c| is_cjk(c) || "（）()·".contains(c))
        && compact.chars().last().is_some_and(|c| UNIT_ENDINGS.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        classify(text.trim(), &compact)
    }

    #[test]
    fn header_lines() {
        assert_eq!(kind("淄博市博山区财政局文件"), Kind::Banner("淄博市博山区财政局".into()));
        assert_eq!(kind("文 件"), Kind::Banner(String::new()));
        assert_eq!(kind("请认真学习有关文件"), Kind::Other);
        assert_eq!(kind("000123"), Kind::CopyNumber);
        assert_eq!(kind("秘密★1年"), Kind::Classification);
        assert_eq!(kind("特急"), Kind::Urgency);
        match kind("鲁财采［２０２２］１４号　　　签发人：张三　李四") {
            Kind::Number { number: Ok(n), signers } => {
                assert_eq!(n.to_string(), "鲁财采〔2022〕14号");
                assert_eq!(signers.as_deref(), Some("张三　李四"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(kind("鲁财采〔22〕14号"), Kind::Number { number: Err(_), .. }));
        assert_eq!(kind("（财政部令第102号）"), Kind::Other);
        assert_eq!(kind("签发人：张三"), Kind::Signer("张三".into()));
    }

    #[test]
    fn body_and_trailer_lines() {
        assert_eq!(
            kind("附件：山东省政府购买服务改革联系点名单"),
            Kind::AttachList("山东省政府购买服务改革联系点名单".into())
        );
        assert_eq!(kind("附 件"), Kind::AnnexHeading(None));
        assert_eq!(kind("附件2"), Kind::AnnexHeading(Some(2)));
        assert_eq!(kind("附件十二"), Kind::AnnexHeading(Some(12)));
        assert_eq!(kind("附件名单"), Kind::Other);
        assert_eq!(kind("附件2：预算表"), Kind::AttachList("2. 预算表".into()));
        assert_eq!(kind("附件２："), Kind::AnnexHeading(Some(2)));
        assert_eq!(kind("主题词：财政　采购　通知"), Kind::Keywords("财政　采购　通知".into()));
        assert_eq!(kind("抄报：省政府。"), Kind::Cc("省政府。".into()));
        assert_eq!(kind("联系人及电话：王高文 0531-51769834。"), Kind::Contact);
        assert_eq!(kind("（联系人：张三，电话：12345678）"), Kind::Contact);
        assert_eq!(kind("信息公开选项：主动公开"), Kind::Disclosure("主动公开".into()));
        assert_eq!(kind("抄 送：省委办公厅。"), Kind::Cc("省委办公厅。".into()));
        assert!(matches!(kind("2022年12月22日"), Kind::Date(Ok(_))));
        match kind("山东省财政厅办公室          2022年8月16日印发") {
            Kind::Printed { by, on: Ok(_) } => assert_eq!(by, "山东省财政厅办公室"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unit_names() {
        for yes in ["山东省财政厅", "中共山东省委", "淄博市人民政府办公室", "各镇(街道)财政所", "国务院"]
        {
            assert!(is_unit_name(yes), "{yes}");
        }
        for no in ["联系点名单", "有关", "各市财政局，省直各部门", "2022年", "X"] {
            assert!(!is_unit_name(no), "{no}");
        }
    }
}
