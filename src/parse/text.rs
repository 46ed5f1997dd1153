//! Line-level recognisers for GB/T 9704 document text: dates in Chinese or Arabic numerals, page numbers, the lines
//! that open or close a document's parts. Everything here looks at one line at a time.
use chrono::NaiveDate;

use crate::domain::number::DocNumber;

/// A line with every whitespace character removed: PDF extraction scatters spaces through Chinese text, and no
/// element recognised here has a meaningful space. Text kept as found (titles, names) goes through this only.
pub fn compact(line: &str) -> String {
    line.chars().filter(|c| !c.is_whitespace()).collect()
}

/// [`compact`], with full-width digits and letters made half-width: the form recognisers match against.
pub fn squeeze(line: &str) -> String {
    line.chars().filter(|c| !c.is_whitespace()).map(half_width).collect()
}

/// Full-width ASCII (digits, letters, ．) to half-width; other characters as they are.
fn half_width(c: char) -> char {
    match c {
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '．' | '［' | '］' => {
            char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c)
        }
        _ => c,
    }
}

/// Page numbers left in extracted text: "— 3 —", "-3-", "－ 12 －", "第3页".
pub fn is_page_number(line: &str) -> bool {
    let s = squeeze(line);
    let inner = s.trim_matches(|c| matches!(c, '—' | '-' | '－' | '–' | '一'));
    let inner = inner.strip_prefix('第').and_then(|r| r.strip_suffix('页')).unwrap_or(inner);
    !s.is_empty() && inner.len() < s.len() && !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit())
}

fn chinese_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '零' | 'O' | '○' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

/// A number of 1 to 99 written in Arabic digits or Chinese numerals (十二, 二十二, 三十).
fn small_number(s: &str) -> Option<u32> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse().ok().filter(|n| *n < 100);
    }
    let chars: Vec<char> = s.chars().collect();
    match chars.as_slice() {
        ['十'] => Some(10),
        [d] => chinese_digit(*d),
        ['十', d] => Some(10 + chinese_digit(*d)?),
        [t, '十'] => Some(chinese_digit(*t)? * 10),
        [t, '十', d] => Some(chinese_digit(*t)? * 10 + chinese_digit(*d)?),
        _ => None,
    }
}

fn year_number(s: &str) -> Option<i32> {
    if s.chars().count() != 4 {
        return None;
    }
    let mut year = 0i32;
    for c in s.chars() {
        let d = c.to_digit(10).or_else(|| chinese_digit(c))?;
        year = year * 10 + i32::try_from(d).ok()?;
    }
    Some(year)
}

/// `2022年12月22日` or `二〇二二年十二月二十二日` (spaces anywhere), and nothing else on the line.
pub fn date(line: &str) -> Option<NaiveDate> {
    let s = squeeze(line);
    let (y, rest) = s.split_once('年')?;
    let (m, rest) = rest.split_once('月')?;
    let d = rest.strip_suffix('日')?;
    NaiveDate::from_ymd_opt(year_number(y)?, small_number(m)?, small_number(d)?)
}

/// A printing line, `2022年8月16日印发` or `山东省财政厅办公室 2022年8月16日印发`: the office (empty when it
/// stands on the line above) and the date.
pub fn printing(line: &str) -> Option<(String, NaiveDate)> {
    let s = squeeze(line);
    let before = s.strip_suffix("印发")?;
    // The date is the shortest tail that reads as one.
    let starts: Vec<usize> = before.char_indices().map(|(i, _)| i).collect();
    for &i in &starts {
        if let Some(d) = date(&before[i..]) {
            return Some((before[..i].to_owned(), d));
        }
    }
    None
}

/// The value after a label such as 信息公开选项 or 抄送, accepting full- or half-width colons.
pub fn labelled(line: &str, label: &str) -> Option<String> {
    let s = compact(line);
    let rest = s.strip_prefix(label)?;
    let rest = rest.strip_prefix('：').or_else(|| rest.strip_prefix(':'))?;
    Some(rest.trim_end_matches(['。', '.']).to_owned())
}

/// A banner line, `淄博市财政局文件`: the issuer's name followed by 文件, short, without sentence punctuation.
pub fn banner(line: &str) -> Option<String> {
    let s = compact(line);
    let issuer = s.strip_suffix("文件")?;
    let plain = !issuer.chars().any(|c| matches!(c, '，' | '。' | '：' | '；' | '《' | '》' | '、' | ','));
    (plain && (2..=40).contains(&issuer.chars().count())).then(|| issuer.to_owned())
}

/// A number line, possibly with the signer beside it (上行文): `鲁财采〔2022〕14号  签发人：张三`.
pub fn number_line(line: &str) -> Option<(DocNumber, Option<String>)> {
    let s = squeeze(line);
    let (number, signer) = match s.split_once("签发人") {
        Some((n, sig)) => {
            let sig = sig.trim_start_matches(['：', ':']).to_owned();
            (n.to_owned(), (!sig.is_empty()).then_some(sig))
        }
        None => (s, None),
    };
    DocNumber::parse(&number).ok().map(|n| (n, signer))
}

/// Looks like a number line that did not parse: worth a warning rather than silence.
pub fn looks_like_number(line: &str) -> bool {
    let s = squeeze(line);
    s.ends_with('号') && s.chars().count() < 30 && s.chars().any(|c| "〔[【（(".contains(c))
}

/// Headings inside a body (一、 （一） 1. 1、), which end a paragraph even without a full stop.
pub fn is_heading(paragraph: &str) -> bool {
    let s = squeeze(paragraph);
    let short = s.chars().count() <= 40;
    let numbered = s.chars().next().is_some_and(|c| chinese_digit(c).is_some() || c == '十') && s.contains('、');
    let bracketed = s.starts_with('（') && s.chars().nth(2).is_some_and(|c| c == '）' || c == '十');
    let arabic = s.chars().next().is_some_and(|c| c.is_ascii_digit()) && (s.contains('．') || s.contains('.'));
    short && (numbered || bracketed || arabic) && !s.ends_with('。')
}

/// A numbered attachment item, `1. 标题` / `1．标题` / `1、标题`: the ordinal and the title.
pub fn numbered_item(text: &str) -> Option<(u32, String)> {
    let s = squeeze(text);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let rest = &s[digits.len()..];
    let rest = rest.strip_prefix(['.', '、', '．']).unwrap_or(rest);
    let n = digits.parse().ok()?;
    (!rest.is_empty()).then(|| (n, rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn dates_in_both_numeral_systems() {
        assert_eq!(date("2022年12月22日"), Some(d(2022, 12, 22)));
        assert_eq!(date(" 2022 年 8 月 16 日 "), Some(d(2022, 8, 16)));
        assert_eq!(date("二〇二二年十二月二十二日"), Some(d(2022, 12, 22)));
        assert_eq!(date("二〇二三年一月十日"), Some(d(2023, 1, 10)));
        assert_eq!(date("２０２２年８月１６日"), Some(d(2022, 8, 16)));
        assert_eq!(date("2022年13月1日"), None);
        assert_eq!(date("于2022年12月22日前报送"), None);
        assert_eq!(printing("2022年8月16日印发"), Some((String::new(), d(2022, 8, 16))));
        assert_eq!(
            printing("山东省财政厅办公室 2022年8月16日印发"),
            Some(("山东省财政厅办公室".into(), d(2022, 8, 16)))
        );
    }

    #[test]
    fn banners_numbers_and_page_numbers() {
        assert_eq!(banner("淄博市博山区财政局文件").as_deref(), Some("淄博市博山区财政局"));
        assert_eq!(banner("山东省财政厅 文件").as_deref(), Some("山东省财政厅"));
        assert!(banner("根据有关文件，现通知如下文件").is_none());
        let (n, signer) = number_line("鲁财采［2022］14号    签发人：王五").expect("number");
        assert_eq!(n.to_string(), "鲁财采〔2022〕14号");
        assert_eq!(signer.as_deref(), Some("王五"));
        assert!(number_line("鲁财采〔2022〕１４号").is_some());
        assert!(looks_like_number("鲁财采〔二〇二二〕14号"));
        assert!(is_page_number("— 3 —") && is_page_number("-12-") && is_page_number("第3页"));
        assert!(!is_page_number("3") && !is_page_number("——"));
    }

    #[test]
    fn headings_and_items() {
        assert!(is_heading("一、充分认识推进政府购买服务改革的重要性"));
        assert!(is_heading("（一）加强目录管理"));
        assert!(!is_heading("政府购买服务作为公共服务供给的一种创新模式。"));
        assert_eq!(numbered_item("1. 联系点名单"), Some((1, "联系点名单".into())));
        assert_eq!(numbered_item("２．名单"), Some((2, "名单".into())));
        assert_eq!(numbered_item("名单"), None);
        assert_eq!(labelled("信息公开选项：主动公开", "信息公开选项").as_deref(), Some("主动公开"));
        assert_eq!(labelled("抄送: 省审计厅。", "抄送").as_deref(), Some("省审计厅"));
    }
}
