//! String formats (go-openapi strfmt) as kube-apiserver checks them, loosely.

// ---------------------------------------------------------------------------------------------
// Formats (go-openapi strfmt), checked loosely
// ---------------------------------------------------------------------------------------------

/// Whether `text` is valid for a (normalized, supported) string format. Formats without a check here
/// (`email`, `hostname`, `uri`, `isbn*`, `creditcard`, `ssn`, `duration`, `quantity`, `password`)
/// accept everything.
pub(super) fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "datetime" => is_date_time(text),
        "date" => is_date(text),
        "uuid" => is_uuid(text, None),
        "uuid3" => is_uuid(text, Some(b'3')),
        "uuid4" => is_uuid(text, Some(b'4')),
        "uuid5" => is_uuid(text, Some(b'5')),
        "ipv4" => text.parse::<std::net::IpAddr>().is_ok() && text.contains('.'),
        "ipv6" => text.parse::<std::net::IpAddr>().is_ok() && text.contains(':'),
        "cidr" => is_cidr(text),
        "mac" => is_mac(text),
        "byte" => is_base64(text),
        "hexcolor" => {
            let h = text.strip_prefix('#').unwrap_or(text);
            matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit())
        }
        "bsonobjectid" => text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => true,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&s[0..4]), digits(&s[5..7]), digits(&s[8..10])) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// strfmt `IsDateTime`: lowercase, split on `t`, a valid date, then
/// `^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$` with hour ≤ 23, minute
/// and second ≤ 59 (further `t`-separated parts are ignored, as in Go).
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    let t = parts[1].as_bytes();
    if t.len() < 9 || t[2] != b':' || t[5] != b':' {
        return false;
    }
    let two = |i: usize| digits(std::str::from_utf8(&t[i..i + 2]).unwrap_or(""));
    let (Some(h), Some(m), Some(sec)) = (two(0), two(3), two(6)) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    // Bytes 0..8 are ASCII, so 8 is a char boundary.
    let rest = &parts[1][8..];
    let zone_ok = |z: &str| {
        let b = z.as_bytes();
        z == "z"
            || (b.len() == 6
                && matches!(b[0], b'+' | b'-')
                && b[3] == b':'
                && [b[1], b[2], b[4], b[5]].iter().all(u8::is_ascii_digit))
    };
    if zone_ok(rest) {
        return true;
    }
    // `(.[0-9]+)?`: any one character, then digits, then the zone.
    let mut chars = rest.chars();
    if chars.next().is_none() {
        return false;
    }
    let after = chars.as_str();
    let n = after.bytes().take_while(u8::is_ascii_digit).count();
    (1..=n).any(|k| zone_ok(&after[k..]))
}

/// `(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$`; uuid3/4/5 also fix the
/// version digit, uuid4/5 the variant.
fn is_uuid(s: &str, version: Option<u8>) -> bool {
    let mut hex: Vec<u8> = Vec::with_capacity(32);
    let mut last_dash = None;
    for c in s.chars() {
        if c == '-' {
            if !matches!(hex.len(), 8 | 12 | 16 | 20) || last_dash == Some(hex.len()) {
                return false;
            }
            last_dash = Some(hex.len());
        } else if c.is_ascii_hexdigit() {
            hex.push(c.to_ascii_lowercase() as u8);
        } else {
            return false;
        }
    }
    if hex.len() != 32 {
        return false;
    }
    match version {
        None => true,
        Some(b'3') => hex[12] == b'3',
        Some(v) => hex[12] == v && matches!(hex[16], b'8' | b'9' | b'a' | b'b'),
    }
}

/// `net.ParseCIDR`.
fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Some(bits) = digits(bits) else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// `net.ParseMAC`: 6, 8 or 20 bytes as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx...`.
fn is_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        let groups: Vec<&str> = s.split(sep).collect();
        if matches!(groups.len(), 6 | 8 | 20) && groups.iter().all(|g| hex(g, 2)) {
            return true;
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    matches!(groups.len(), 3 | 4 | 10) && groups.iter().all(|g| hex(g, 4))
}

/// `base64.StdEncoding.DecodeString` (which skips `\r` and `\n`).
fn is_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return false;
    }
    b[..b.len() - pad]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(
            is_date("2024-02-29") && !is_date("2023-02-29") && !is_date("2024-13-01") && !is_date("24-01-01")
        );
        assert!(is_date_time("2026-11-22T07:16:02Z") && !is_date_time("2026-11-22 07:16:02Z"));
        assert!(is_date_time("2026-11-22T07:16:02.5-07:00") && !is_date_time("2026-11-22T24:00:00Z"));
        assert!(is_uuid("7CFED4E21DE24279A4AE4C6821FD2FAF", None) && !is_uuid("7cfed4e2--1de2", None));
        assert!(is_uuid("7cfed4e2-1de2-4279-a4ae-4c6821fd2faf", Some(b'4')));
        assert!(!is_uuid("7cfed4e2-1de2-3279-a4ae-4c6821fd2faf", Some(b'4')));
        assert!(format_ok("ipv4", "10.0.0.1") && !format_ok("ipv4", "::1") && format_ok("ipv6", "::1"));
        assert!(is_cidr("10.0.0.0/8") && !is_cidr("10.0.0.0/33") && !is_cidr("10.0.0.0"));
        assert!(is_mac("00:1a:2B:3c:4d:5e") && is_mac("001a.2b3c.4d5e") && !is_mac("00:1a"));
        assert!(is_base64("aGVsbG8=") && !is_base64("aGVsbG8") && !is_base64("a==="));
        assert!(format_ok("hexcolor", "#fff") && !format_ok("hexcolor", "#ffff"));
        assert!(format_ok("email", "anything"));
    }
}
