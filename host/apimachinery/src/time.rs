//! Kubernetes timestamps, on `jiff`: the one place that formats and parses them.
//!
//! `metav1.Time` is written as RFC 3339 with second precision in UTC (`2026-11-22T07:14:17Z`):
//! `creationTimestamp`, `deletionTimestamp`, `managedFields[].time`, condition times. Reading is
//! stricter than `jiff`'s own parser (which takes many Temporal/ISO 8601 forms): only the layout of
//! Go's `time.RFC3339`, with a fraction (dropped) or an offset (applied) allowed. Tables show ages
//! the way kubectl does ([`age`], [`human_duration`]).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// How `metav1.Time` is written (`Timestamp::strftime` prints in UTC).
const LAYOUT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// The current time as Kubernetes writes it: `2026-11-22T07:14:17Z`.
pub fn now() -> String {
    format(Timestamp::now())
}

/// `2026-11-22T07:14:17Z`: RFC 3339, whole seconds (a fraction is truncated), UTC.
pub fn format(t: Timestamp) -> String {
    t.strftime(LAYOUT).to_string()
}

/// Parses an RFC 3339 time: `2026-11-22T07:14:17Z`, also with a fraction (`.123`, dropped: the API
/// keeps seconds) or an offset (`+01:00`). Anything else — a space for `T`, a missing offset, an
/// invalid date, second 60 — is `None`.
pub fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Option<i32> {
        let digits = b.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i32::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            // jiff takes offsets up to 25:59; RFC 3339 (and Go) stop at 23:59.
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => return None,
    };
    // The grammar is checked above; jiff checks the calendar (month lengths, leap years, 0..=59).
    let datetime = DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    Offset::from_seconds(offset).ok()?.to_timestamp(datetime).ok()
}

/// The age of an object with this timestamp, as `kubectl get` shows it (`45s`, `4m22s`, `3d5h`);
/// `<unknown>` when the timestamp does not parse.
pub fn age(timestamp: &str) -> String {
    age_at(timestamp, Timestamp::now())
}

fn age_at(timestamp: &str, now: Timestamp) -> String {
    match parse(timestamp) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

/// A duration in seconds the way kubectl prints ages (apimachinery's `duration.HumanDuration`):
/// precise when young (`4m22s`, `5h3m`, `3d5h`), coarser with age (`95m`, `20h`, `40d`, `3y7d`,
/// `9y`). Up to a second in the future is `0s` (clock skew); further is `<invalid>`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 2 * 60 {
        return format!("{seconds}s");
    }
    // Each unit prints with the next smaller one unless that is zero (`4m`, not `4m0s`).
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    let minutes = seconds / 60;
    if minutes < 10 {
        return pair(minutes, "m", seconds % 60, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return pair(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 8 * 24 {
        return pair(days, "d", hours % 24, "h");
    }
    if hours < 2 * 365 * 24 {
        return format!("{days}d");
    }
    if hours < 8 * 365 * 24 {
        return pair(days / 365, "y", days % 365, "d");
    }
    format!("{}y", days / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<i64> {
        parse(s).map(Timestamp::as_second)
    }

    #[test]
    fn formats_whole_seconds_in_utc() {
        assert_eq!(format(Timestamp::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = Timestamp::new(1_795_331_657, 999_999_999).unwrap();
        assert_eq!(format(t), "2026-11-22T07:14:17Z");
        assert_eq!(
            format(Timestamp::from_second(-62_135_596_800).unwrap()),
            "0001-01-01T00:00:00Z"
        );
        let now = now();
        assert_eq!(now.len(), 20);
        assert_eq!(parse(&now).map(format), Some(now));
    }

    #[test]
    fn parses_rfc3339_with_fractions_and_offsets() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(secs("2026-11-22T07:14:17Z"), Some(1_795_331_657));
        // Fractions are dropped (truncated), offsets applied.
        assert_eq!(secs("2026-11-22T07:14:17.999Z"), Some(1_795_331_657));
        assert_eq!(secs("2026-11-22T08:14:17.123+01:00"), Some(1_795_331_657));
        assert_eq!(secs("2026-11-22T01:44:17-05:30"), Some(1_795_331_657));
        assert_eq!(
            parse("2024-02-29T23:59:59Z").map(format).as_deref(),
            Some("2024-02-29T23:59:59Z")
        );
        assert_eq!(secs("1969-12-31T23:59:59.5Z"), Some(-1));
    }

    #[test]
    fn rejects_anything_but_the_rfc3339_layout() {
        for bad in [
            "",
            "2023-02-29T00:00:00Z",      // not a leap year
            "2023-04-31T00:00:00Z",      // April has 30 days
            "2023-13-01T00:00:00Z",      // month
            "2023-01-01T24:00:00Z",      // hour
            "2023-01-01T00:60:00Z",      // minute
            "2023-01-01T00:00:60Z",      // leap second
            "2023-01-01 00:00:00Z",      // space for T
            "2023-01-01t00:00:00Z",      // lowercase t
            "2023-01-01T00:00:00z",      // lowercase z
            "2023-01-01T00:00:00",       // no offset
            "2023-01-01T00:00:00.Z",     // empty fraction
            "2023-01-01T00:00:00+0100",  // offset without colon
            "2023-01-01T00:00:00+24:00", // offset hour
            "2023-01-01T00:00:00+01:60", // offset minute
            "2023-01-01T00:00:00Zjunk",
            "23-01-01T00:00:00Z",
            "2023-1-01T00:00:00Z",
            "+2023-01-01T00:00:00Z",
            "2023-01-01T00:00Z",
            "yesterday",
            "2026-11-22T07:14:17[UTC]",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ages_follow_kubectls_buckets() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (262, "4m22s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 3599, "47h"),
            (48 * 3600, "2d"),
            (3 * 86400 + 5 * 3600, "3d5h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (3 * 365 * 86400 + 7 * 86400, "3y7d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400 + 100 * 86400, "20y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}s");
        }
    }

    #[test]
    fn ages_of_timestamps() {
        let now = parse("2026-11-22T07:14:17Z").unwrap();
        assert_eq!(age_at("2026-11-22T07:13:32Z", now), "45s");
        assert_eq!(age_at("2026-11-22T07:09:55Z", now), "4m22s");
        assert_eq!(age_at("2026-11-19T02:14:17Z", now), "3d5h");
        // A creation time a little ahead of this clock (another server's) reads as new.
        assert_eq!(age_at("2026-11-22T07:14:18Z", now), "0s");
        assert_eq!(age_at("not a time", now), "<unknown>");
        // With the real clock: far enough back that a second ticking over changes nothing.
        let ago =
            |seconds: i64| format(Timestamp::from_second(Timestamp::now().as_second() - seconds).unwrap());
        assert_eq!(age(&ago(3 * 86400 + 3600 * 5)), "3d5h");
        assert_eq!(age("not a time"), "<unknown>");
    }
}
