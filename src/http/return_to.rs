//! `return_to`: where a sign-in sends the browser afterwards. Only same-origin relative paths
//! pass, so a link to our login page can never send a user to another site.

/// Longest `return_to` kept.
const MAX_LEN: usize = 2048;

/// `raw` when it is a safe same-origin path (`/x`, with query), else `None`.
///
/// Refused: anything not starting with exactly one `/` (`//host`, `/\host`, schemes, relative
/// paths), backslashes, control characters and whitespace anywhere, and percent-encoded
/// slashes, backslashes or control characters (browsers and proxies decode those differently).
pub(crate) fn safe_return_to(raw: &str) -> Option<&str> {
    let bytes = raw.as_bytes();
    let shape_ok = raw.len() <= MAX_LEN
        && bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && !bytes
            .iter()
            .any(|&b| b == b'\\' || b.is_ascii_control() || b == b' ' || b >= 0x80);
    if !shape_ok {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let encoded_trick = ["%2f", "%5c", "%0", "%1", "%7f", "%25"]
        .iter()
        .any(|needle| lower.contains(needle));
    (!encoded_trick).then_some(raw)
}

/// `raw` when safe, else `/`.
pub(crate) fn return_to_or_home(raw: Option<&str>) -> String {
    raw.and_then(safe_return_to).unwrap_or("/").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_pass() {
        for ok in [
            "/",
            "/people",
            "/device?user_code=BCDF-GHJK",
            "/a/b?c=d&e=%20f#x",
        ] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn open_redirect_payloads_are_refused() {
        for bad in [
            "",
            "https://evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2fevil.example",
            "/%2Fevil.example",
            "/%5cevil.example",
            "/%252f%252fevil.example",
            "javascript:alert(1)",
            "evil.example",
            "/\tevil",
            "/ok\r\nSet-Cookie: x=y",
            "/%0d%0aSet-Cookie:x",
            "/caf\u{e9}",
            " /x",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
        assert_eq!(safe_return_to(&format!("/{}", "a".repeat(MAX_LEN))), None);
        assert_eq!(return_to_or_home(Some("//evil")), "/");
        assert_eq!(return_to_or_home(None), "/");
    }
}
