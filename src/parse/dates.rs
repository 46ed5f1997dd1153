//! Dates as official documents print them: 2022年12月22日 (GB/T 9704-2012 §7.3.5 asks for Arabic numerals) and
//! 二〇二二年十二月二十二日 (the older form, still common).
use chrono::NaiveDate;

/// A date that fills `compact` (no whitespace) entirely. `None` when the text is not shaped like a date;
/// `Some(Err(reason))` when it is, but names no real day (2022年2月30日).
pub(crate) fn parse_date(compact: &str) -> Option<Result<NaiveDate, String>> {
    let (year, rest) = compact.split_once('年')?;
    let (month, rest) = rest.split_once('月')?;
    let day = rest.strip_suffix('日').or_else(|| rest.strip_suffix('号'))?;
    let y = year_number(year)?;
    let m = small_number(month)?;
    let d = small_number(day)?;
    Some(NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| format!("{compact} is not a day of the calendar")))
}

/// The date at the end of `compact` and the text before it, as in 山东省财政厅办公室2022年8月16日.
pub(crate) fn split_trailing_date(compact: &str) -> Option<(&str, Result<NaiveDate, String>)> {
    // The year has 4 characters before its 年, which stands at most 8 characters from the end (年十二月二十二日);
    // try each 年 there from the end, in case the name before the date holds one.
    let tail_start = compact.char_indices().rev().nth(8).map_or(0, |(i, _)| i);
    let mut search_end = compact.len();
    while let Some(at) = compact[..search_end].rfind('年').filter(|at| *at >= tail_start) {
        let start = compact[..at].char_indices().rev().nth(3).map(|(i, _)| i);
        if let Some(start) = start
            && let Some(date) = parse_date(&compact[start..])
        {
            return Some((&compact[..start], date));
        }
        search_end = at;
    }
    None
}

fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        '０'..='９' => Some(u32::from(c) - u32::from('０')),
        // 〇 is the standard zero; ○, 零 and a letter O are what typists and OCR put in its place.
        '〇' | '○' | '零' | 'O' | 'o' | 'Ｏ' => Some(0),
        '一' => Some(1),
        '二' => Some(2),
        '三' => Some(3),
        '四' => Some(4),
        '五' => Some(5),
        '六' => Some(6),
        '七' => Some(7),
        '八' => Some(8),
        '九' => Some(9),
        _ => None,
    }
}

/// A year of exactly four digits, Arabic or Chinese (二〇二二).
fn year_number(text: &str) -> Option<i32> {
    if text.chars().count() != 4 {
        return None;
    }
    text.chars().try_fold(0i32, |acc, c| digit(c).map(|d| acc * 10 + d as i32))
}

/// A month or day: 1 or 2 Arabic digits, or a Chinese number up to 三十一 (十, 十二, 二十, 二十二).
fn small_number(text: &str) -> Option<u32> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() || chars.len() > 3 {
        return None;
    }
    if let Some(ten_at) = chars.iter().position(|c| *c == '十') {
        let tens = match &chars[..ten_at] {
            [] => 1,
            [d] => digit(*d).filter(|d| (1..=9).contains(d))?,
            _ => return None,
        };
        let units = match &chars[ten_at + 1..] {
            [] => 0,
            [d] => digit(*d).filter(|d| (1..=9).contains(d))?,
            _ => return None,
        };
        return Some(tens * 10 + units);
    }
    if chars.len() > 2 {
        return None;
    }
    chars.iter().try_fold(0u32, |acc, c| digit(*c).map(|d| acc * 10 + d))
}

/// Prints a date the way GB/T 9704-2012 asks: 2022年12月22日.
pub(crate) fn arabic(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// Prints a date in Chinese numerals: 二〇二二年十二月二十二日.
pub(crate) fn chinese(d: NaiveDate) -> String {
    use chrono::Datelike;
    const DIGITS: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let year: String =
        d.year().to_string().chars().filter_map(|c| c.to_digit(10)).map(|n| DIGITS[n as usize]).collect();
    let small = |n: u32| -> String {
        let (tens, units) = (n / 10, n % 10);
        let mut s = String::new();
        if tens > 1 {
            s.push(DIGITS[tens as usize]);
        }
        if tens > 0 {
            s.push('十');
        }
        if units > 0 {
            s.push(DIGITS[units as usize]);
        }
        s
    };
    format!("{year}年{}月{}日", small(d.month()), small(d.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn arabic_and_chinese_forms() {
        for (text, want) in [
            ("2022年12月22日", day(2022, 12, 22)),
            ("2022年8月16日", day(2022, 8, 16)),
            ("２０２２年８月１６日", day(2022, 8, 16)),
            ("2022年08月06日", day(2022, 8, 6)),
            ("二〇二二年十二月二十二日", day(2022, 12, 22)),
            ("二○二二年八月十六日", day(2022, 8, 16)),
            ("二零二二年十月三十一日", day(2022, 10, 31)),
            ("二〇二二年一月十日", day(2022, 1, 10)),
        ] {
            assert_eq!(parse_date(text), Some(Ok(want)), "{text}");
        }
    }

    #[test]
    fn shapes_that_are_not_dates() {
        for text in ["2022年", "2022年12月", "22年12月22日", "2022年13个月22日", "今年12月22日", "2022年一百月1日", ""]
        {
            assert_eq!(parse_date(text), None, "{text}");
        }
        assert!(matches!(parse_date("2022年2月30日"), Some(Err(_))));
        assert!(matches!(parse_date("2022年13月1日"), Some(Err(_))));
    }

    #[test]
    fn printing_line() {
        let (by, on) = split_trailing_date("山东省财政厅办公室2022年8月16日").unwrap_or(("?", Err(String::new())));
        assert_eq!((by, on), ("山东省财政厅办公室", Ok(day(2022, 8, 16))));
        assert_eq!(split_trailing_date("2022年8月16日").map(|x| x.0), Some(""));
        assert_eq!(split_trailing_date("青年办公室二〇二二年八月十六日").map(|x| x.0), Some("青年办公室"));
        assert!(split_trailing_date("年").is_none());
    }

    #[test]
    fn printing_round_trips() {
        for d in [day(2022, 12, 22), day(2000, 1, 1), day(2019, 10, 10), day(2031, 11, 30)] {
            assert_eq!(parse_date(&arabic(d)), Some(Ok(d)));
            assert_eq!(parse_date(&chinese(d)), Some(Ok(d)));
        }
        assert_eq!(chinese(day(2022, 12, 22)), "二〇二二年十二月二十二日");
        assert_eq!(chinese(day(2022, 10, 1)), "二〇二二年十月一日");
    }
}
