//! Name rules every Kubernetes object and client follows (`k8s.io/apimachinery/pkg/util/validation`):
//! RFC 1123 labels and subdomains, and qualified names (`example.com/name`, as finalizers and label
//! keys are written).

/// An RFC 1123 label: lower-case letters, digits and '-', starting and ending with a letter or
/// digit, at most 63 characters (namespace names, Service names, plugin names).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain: labels joined by '.', at most 253 characters (most object names).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A qualified name with a prefix: `example.com/cleanup` (a subdomain, '/', then at most 63
/// letters, digits, '-', '_' or '.', starting and ending with a letter or digit).
pub fn is_prefixed_qualified_name(s: &str) -> bool {
    let Some((prefix, name)) = s.split_once('/') else {
        return false;
    };
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    is_dns_subdomain(prefix)
        && !name.is_empty()
        && name.len() <= 63
        && edge(name.bytes().next())
        && edge(name.bytes().last())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rfc_1123_rules() {
        assert!(is_dns_label("my-name") && is_dns_label("123-abc"));
        assert!(!is_dns_label("My") && !is_dns_label("-a") && !is_dns_label("a.b") && !is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("orders.v2") && !is_dns_subdomain("a..b"));
        assert!(is_prefixed_qualified_name("wasmop.io/configmap-replicator"));
        assert!(is_prefixed_qualified_name("example.com/Clean_up.1"));
        assert!(!is_prefixed_qualified_name("no-prefix") && !is_prefixed_qualified_name("a/-b"));
        assert!(!is_prefixed_qualified_name("Bad.Prefix/x"));
    }
}
