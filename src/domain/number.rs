//! 发文字号: document numbers like 鲁财采〔2022〕14号.
use serde::{Deserialize, Serialize};

use super::DomainError;

/// A document number: 机关代字 + 〔year〕 + serial + 号.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocNumber {
    /// 机关代字, e.g. 鲁财采.
    pub prefix: String,
    /// Year, e.g. 2022.
    pub year: u32,
    /// Serial from 1, printed without leading zeros.
    pub serial: u32,
}

/// Bracket pairs seen around the year in real documents and their transcriptions; 〔〕 is the standard one.
const BRACKETS: [(char, char); 5] = [('〔', '〕'), ('[', ']'), ('【', '】'), ('（', '）'), ('(', ')')];
const MAX_PREFIX_CHARS: usize = 16;
const MAX_SERIAL: u32 = 999_999;

impl DocNumber {
    /// Parses a number, accepting 〔〕 [] 【】 （） () brackets, full-width digits, and stray spaces from PDF extraction.
    pub fn parse(input: &str) -> Result<DocNumber, DomainError> {
        let bad = |reason: &str| DomainError::InvalidNumber { input: input.to_owned(), reason: reason.to_owned() };
        let text: String = input.chars().filter(|c| !c.is_whitespace()).map(half_width_digit).collect();
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let body = text.strip_suffix('号').ok_or_else(|| bad("it must end with 号"))?;
        let (open_at, open, close) = body
            .char_indices()
            .find_map(|(i, c)| BRACKETS.iter().find(|(o, _)| *o == c).map(|(o, cl)| (i, *o, *cl)))
            .ok_or_else(|| bad("the year must stand in brackets, e.g. 〔2022〕"))?;
        let prefix = &body[..open_at];
        let rest = &body[open_at + open.len_utf8()..];
        let close_at =
            rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| bad("the year's bracket is not closed"))?;
        let (year_text, after_year) = rest.split_at(close_at);
        let found = after_year.chars().next().unwrap_or(close);
        if found != close {
            return Err(bad(&format!("the bracket {open} is closed by {found}; expected {close}")));
        }
        let serial_text = &after_year[found.len_utf8()..];
        validate_prefix(prefix).map_err(|e| match e {
            DomainError::InvalidField { reason, .. } => bad(&format!("机关代字 {reason}")),
            other => other,
        })?;
        if year_text.len() != 4 {
            return Err(bad("the year must have 4 digits"));
        }
        let year: u32 = year_text.parse().map_err(|_| bad("the year is not a number"))?;
        if !(1949..=2999).contains(&year) {
            return Err(bad("the year must lie between 1949 and 2999"));
        }
        if serial_text.is_empty() || !serial_text.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("a serial number must follow the year, e.g. 〔2022〕14号"));
        }
        let serial: u32 = serial_text.parse().map_err(|_| bad("the serial is too large"))?;
        if serial == 0 {
            return Err(bad("serials start at 1"));
        }
        if serial > MAX_SERIAL {
            return Err(bad("the serial is too large"));
        }
        Ok(DocNumber { prefix: prefix.to_owned(), year, serial })
    }
}

fn half_width_digit(c: char) -> char {
    match c {
        '０'..='９' => char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c),
        _ => c,
    }
}

fn is_cjk(c: char) -> bool {
    matches!(u32::from(c), 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// Checks a 机关代字 on its own: 1 to 16 characters, at least one Chinese character, no digits, brackets or spaces.
pub fn validate_prefix(prefix: &str) -> Result<(), DomainError> {
    let bad = |reason: &str| DomainError::field("number_prefix", format!("{prefix:?}: {reason}"));
    if prefix.is_empty() {
        return Err(bad("is missing"));
    }
    if prefix.chars().count() > MAX_PREFIX_CHARS {
        return Err(bad("has more than 16 characters"));
    }
    if prefix.chars().any(|c| c.is_numeric() || c.is_whitespace()) {
        return Err(bad("must not contain digits or spaces"));
    }
    if prefix.chars().any(|c| BRACKETS.iter().any(|(o, cl)| *o == c || *cl == c) || c == '号') {
        return Err(bad("must not contain brackets or 号"));
    }
    if !prefix.chars().all(|c| is_cjk(c) || c.is_ascii_uppercase()) || !prefix.chars().any(is_cjk) {
        return Err(bad("must be Chinese characters, e.g. 鲁财采"));
    }
    Ok(())
}

impl std::fmt::Display for DocNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}〔{}〕{}号", self.prefix, self.year, self.serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(prefix: &str, year: u32, serial: u32) -> DocNumber {
        DocNumber { prefix: prefix.into(), year, serial }
    }

    #[test]
    fn corpus_numbers_parse_and_print_back() {
        for (text, want) in [
            ("鲁财采〔2022〕14号", n("鲁财采", 2022, 14)),
            ("淄财采〔2022〕20号", n("淄财采", 2022, 20)),
            ("博财采〔2022〕19号", n("博财采", 2022, 19)),
            ("财综〔2022〕51号", n("财综", 2022, 51)),
            ("鲁财采函〔2022〕2号", n("鲁财采函", 2022, 2)),
            ("鲁财购〔2017〕7号", n("鲁财购", 2017, 7)),
        ] {
            let got = DocNumber::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want);
            assert_eq!(got.to_string(), text);
        }
    }

    #[test]
    fn bracket_variants_digits_and_spaces_normalise() {
        for text in [
            "鲁财采[2022]14号",
            "鲁财采【2022】14号",
            "鲁财采（2022）14号",
            "鲁财采(2022)14号",
            "鲁财采〔２０２２〕１４号",
            " 鲁财采 〔2022〕 14 号\n",
            "鲁财采〔2022〕014号",
        ] {
            assert_eq!(
                DocNumber::parse(text).map(|x| x.to_string()).ok().as_deref(),
                Some("鲁财采〔2022〕14号"),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_forms_are_refused_with_a_reason() {
        for (text, reason) in [
            ("", "empty"),
            ("〔2022〕14号", "机关代字"),
            ("鲁财采14号", "brackets"),
            ("鲁财采〔2022]14号", "closed by"),
            ("鲁财采〔22〕14号", "4 digits"),
            ("鲁财采〔2022〕0号", "start at 1"),
            ("鲁财采〔2022〕14", "号"),
            ("鲁财采〔2022〕14号附件", "号"),
            ("LCC〔2022〕14号", "Chinese"),
            ("鲁财采〔2022〕号", "serial"),
            ("鲁财采〔2022〕1a号", "serial"),
            ("鲁财采〔1900〕1号", "1949"),
            ("鲁财采〔2022〕9999999号", "too large"),
            ("鲁财采〔2022", "号"),
        ] {
            match DocNumber::parse(text) {
                Err(DomainError::InvalidNumber { reason: r, .. }) => assert!(r.contains(reason), "{text}: {r}"),
                other => panic!("{text}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn round_trip_over_many_values() {
        for prefix in ["鲁财采", "财综", "淄财采函"] {
            for year in [1949, 2022, 2999] {
                for serial in [1, 9, 10, 14, 100, 999_999] {
                    let x = n(prefix, year, serial);
                    assert_eq!(DocNumber::parse(&x.to_string()).ok(), Some(x));
                }
            }
        }
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        /// 1 to 16 characters, at least one Chinese: Chinese characters, sometimes with capital letters around them
        /// (never 号, which would end the number).
        fn prefix() -> impl Strategy<Value = String> {
            prop_oneof![
                "[\u{4e00}-\u{9fff}]{1,16}",
                "[A-Z]{0,3}[\u{4e00}-\u{9fff}]{1,8}[A-Z]{0,3}",
                "[\u{3400}-\u{4dbf}\u{f900}-\u{faff}\u{4e00}-\u{9fff}]{1,6}",
            ]
            .prop_filter("号 ends a number", |p| !p.contains('号'))
        }

        fn full_width(s: &str) -> String {
            s.chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) if c.is_ascii_digit() => char::from_u32(u32::from('０') + d).unwrap_or(c),
                    _ => c,
                })
                .collect()
        }

        proptest! {
            #[test]
            fn any_valid_number_prints_in_hexagonal_brackets_and_parses_back(
                p in prefix(), year in 1949u32..=2999, serial in 1u32..=999_999,
            ) {
                let n = DocNumber { prefix: p.clone(), year, serial };
                let printed = n.to_string();
                prop_assert_eq!(&printed, &format!("{p}〔{year}〕{serial}号"));
                prop_assert_eq!(DocNumber::parse(&printed).ok(), Some(n.clone()));
                for (open, close) in BRACKETS {
                    let variant = format!("{p}{open}{year}{close}{serial}号");
                    prop_assert_eq!(DocNumber::parse(&variant).ok(), Some(n.clone()), "{}", variant);
                    prop_assert_eq!(DocNumber::parse(&full_width(&variant)).ok(), Some(n.clone()), "{}", variant);
                }
                let padded = format!("{p}〔{year}〕{serial:07}号");
                prop_assert_eq!(DocNumber::parse(&padded).ok(), Some(n.clone()));
                let spaced: String = printed.chars().flat_map(|c| [c, ' ']).collect();
                prop_assert_eq!(DocNumber::parse(&spaced).ok(), Some(n));
            }

            #[test]
            fn years_and_serials_out_of_range_are_refused(
                p in prefix(), year in prop_oneof![1000u32..1949, 3000u32..=9999], serial in 1_000_000u32..,
            ) {
                for text in [format!("{p}〔{year}〕1号"), format!("{p}〔2022〕{serial}号"), format!("{p}〔2022〕0号")] {
                    prop_assert!(DocNumber::parse(&text).is_err(), "{}", text);
                }
            }

            #[test]
            fn whatever_parses_prints_canonically_and_parses_back(text in "[鲁财采A-Z0-9０-９〔〕\\[\\]【】（）() 号]{0,24}") {
                if let Ok(n) = DocNumber::parse(&text) {
                    prop_assert!(validate_prefix(&n.prefix).is_ok());
                    prop_assert_eq!(DocNumber::parse(&n.to_string()).ok(), Some(n));
                }
            }
        }
    }

    #[test]
    fn prefixes() {
        assert!(validate_prefix("鲁财采").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("鲁财采1").is_err());
        assert!(validate_prefix("鲁 财").is_err());
        assert!(validate_prefix("abc").is_err());
        assert!(validate_prefix("鲁财〔采").is_err());
        assert!(validate_prefix(&"鲁".repeat(17)).is_err());
    }
}
