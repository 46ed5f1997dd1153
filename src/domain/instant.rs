//! Reading the instants records store as text. chrono writes a `DateTime<Utc>` through serde as RFC 3339 in UTC
//! (`2022-08-16T09:30:00Z`, with 3, 6 or 9 fraction digits when there are any); a trace over hundreds of thousands
//! of deliveries reads millions of them, and chrono's general parser is most of the cost, so that one shape is read
//! by hand and anything else goes to chrono.
use chrono::{DateTime, NaiveDate, Utc};

/// Parses an RFC 3339 instant; `None` if it is not one.
pub fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    parse_utc_bytes(s.as_bytes())
}

/// [`parse_utc`] of text still in bytes: the usual shape is read without checking the text is UTF-8 first.
pub fn parse_utc_bytes(b: &[u8]) -> Option<DateTime<Utc>> {
    fast(b).or_else(|| {
        let s = std::str::from_utf8(b).ok()?;
        DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
    })
}

/// Parses a `YYYY-MM-DD` date (how deadlines are stored); anything else goes to chrono.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let year = i32::try_from(digits(&b[0..4])?).ok()?;
        return NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..10])?);
    }
    s.parse().ok()
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the shape chrono writes for UTC.
fn fast(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (date, rest) = b.split_at(19);
    let rest = rest.strip_suffix(b"Z")?;
    let nanos = match rest {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => digits(frac)? * 10u32.pow(9 - frac.len() as u32),
        _ => return None,
    };
    let day = NaiveDate::from_ymd_opt(
        i32::try_from(digits(&date[0..4])?).ok()?,
        digits(&date[5..7])?,
        digits(&date[8..10])?,
    )?;
    let (h, m, sec) = (digits(&date[11..13])?, digits(&date[14..16])?, digits(&date[17..19])?);
    // A leap second (:60) is rare enough to leave to chrono.
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    day.and_hms_nano_opt(h, m, sec, nanos).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn reads_what_chrono_writes_and_refuses_what_is_not_an_instant() {
        let base = Utc.with_ymd_and_hms(2022, 8, 16, 9, 30, 5).single().unwrap_or_default();
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            let text = serde_json::to_string(&t).unwrap_or_default();
            let text = text.trim_matches('"');
            assert_eq!(parse_utc(text), Some(t), "{text}");
            assert_eq!(fast(text.as_bytes()), Some(t), "{text} takes the fast path");
        }
        // Other RFC 3339 forms still read, through chrono.
        assert_eq!(parse_utc("2022-08-16T17:30:05+08:00"), Some(base));
        assert_eq!(parse_utc("2022-08-16T09:30:05.5Z"), Some(base + chrono::Duration::milliseconds(500)));
        assert_eq!(parse_utc_bytes(b"2022-08-16T17:30:05+08:00"), Some(base));
        assert_eq!(parse_utc_bytes(b"2022-08-16T09:30:05\xffZ"), None, "not UTF-8, not an instant");
        assert_eq!(parse_date("2022-11-30"), NaiveDate::from_ymd_opt(2022, 11, 30));
        assert_eq!(parse_date("+2022-11-30"), "+2022-11-30".parse().ok(), "other shapes go to chrono");
        for bad in ["2022-02-30", "2022-13-01", "2022-1a-01", "20221130", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        for bad in [
            "",
            "2022-08-16",
            "2022-13-16T09:30:05Z",
            "2022-02-30T09:30:05Z",
            "2022-08-16T24:00:00Z",
            "2022-08-16T09:30:05.Z",
            "2022-08-16T09:3a:05Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
