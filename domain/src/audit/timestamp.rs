//! [`parse_timestamp`]: the fixed RFC 3339 UTC form every event time takes, and its calendar
//! arithmetic.

/// Parses the fixed timestamp form `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (RFC 3339, UTC) into unix
/// microseconds (digits past the sixth are truncated). `None` for anything else, including
/// impossible dates and leap seconds.
pub fn parse_timestamp(at: &str) -> Option<i64> {
    let bytes = at.as_bytes();
    let main = bytes.get(..19)?;
    let rest = bytes.get(19..)?;
    let (fraction, zone) = rest.split_at(rest.len().checked_sub(1)?);
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if zone != b"Z" || !separators.iter().all(|&(i, c)| main.get(i) == Some(&c)) {
        return None;
    }
    let field = |from: usize, to: usize| main.get(from..to).and_then(digits);
    let (year, month, day) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let (hour, minute, second) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    if !valid_date || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + fraction_micros(fraction)?)
}

fn digits(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 9 {
        return None;
    }
    text.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

fn fraction_micros(fraction: &[u8]) -> Option<i64> {
    match fraction.split_first() {
        None => Some(0),
        Some((b'.', text)) => {
            digits(text)?;
            Some((0..6).fold(0i64, |acc, i| {
                acc * 10 + text.get(i).map_or(0, |&d| i64::from(d - b'0'))
            }))
        }
        Some(_) => None,
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_unix_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500_000)
        );
        assert_eq!(
            parse_timestamp("2026-12-02T10:11:12.123456789Z"),
            Some(1_796_206_272_123_456)
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59Z"), Some(-1_000_000));
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_some());
        for bad in [
            "",
            "Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T10:11:60Z",
            "2026-12-02T10:11:12",
            "2026-12-02T10:11:12+00:00",
            "2026-12-02t10:11:12z",
            "2026-12-02T10:11:12.Z",
            "2026-12-02T10:11:12.1234567890Z",
            "2026-12-02T10:11:1a.1Z",
            "+026-12-02T10:11:12Z",
            "2026-12-02T10:11:12.12é",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
