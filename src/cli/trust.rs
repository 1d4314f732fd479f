//! What the `coder` client trusts, checked before anything is sent or opened (contract
//! section 10):
//!
//! - a server URL is `https://`, or `http://` on a loopback host; plain `http://` elsewhere
//!   would send the password and the API key in the clear, so it needs `--allow-http`;
//! - a server URL never carries credentials (`https://user:pass@host`): they would be sent,
//!   stored and printed;
//! - a verification URL from the server is opened or shown only when it is `https://` (or
//!   `http://` on loopback) and on the server's own origin, so a hostile server cannot make the
//!   browser opener run `file:///...` or send the user to a look-alike host.

use anyhow::{Context, bail};
use url::Url;

/// Whether `url`'s host is this machine.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The server URL to use, checked: http(s), no credentials, plain http only on loopback unless
/// `allow_http`. Returns it without a trailing slash, and whether it is plain http elsewhere
/// (the caller warns).
///
/// Fails with a sentence saying what to change.
pub(crate) fn check_server_url(raw: &str, allow_http: bool) -> anyhow::Result<(String, bool)> {
    let url = Url::parse(raw).with_context(|| format!("invalid server URL `{raw}`"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("invalid server URL `{raw}`: use https:// (or http:// on this machine)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!(
            "the server URL contains credentials: remove the `user:password@` part (they would be sent and stored with the URL); `coder login` asks for them"
        );
    }
    let insecure = url.scheme() == "http" && !is_loopback(&url);
    if insecure && !allow_http {
        bail!(
            "refusing plain http:// to {}: your password and API key would cross the network unencrypted. Use https://, or pass --allow-http if you accept that",
            url.host_str().unwrap_or_default()
        );
    }
    Ok((raw.trim_end_matches('/').to_owned(), insecure))
}

/// Checks a verification URL the server sent: `https://` (or `http://` on loopback) on the
/// server's own origin.
///
/// Fails with a message naming the refused URL (escaped) and the server's origin.
pub(crate) fn check_verification_url(server: &str, sent: &str) -> anyhow::Result<Url> {
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "the server sent a verification address that is not on its own origin ({}): `{}` ({why}); sign-in stopped, nothing was opened",
            origin_of(server),
            super::text::short(sent)
        )
    };
    let url = Url::parse(sent).map_err(|_| refuse("not a URL"))?;
    let server_url = Url::parse(server).map_err(|_| refuse("the server URL is invalid"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err(refuse("only https:// is opened")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it carries credentials"));
    }
    if url.origin() != server_url.origin() {
        return Err(refuse("another origin"));
    }
    Ok(url)
}

/// `scheme://host[:port]` of `url`, for prompts.
pub(crate) fn origin_of(url: &str) -> String {
    Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| super::text::short(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_or_loopback_http_without_credentials() {
        assert_eq!(
            check_server_url("https://code.example.com/", false).unwrap(),
            ("https://code.example.com".into(), false)
        );
        check_server_url("http://127.0.0.1:8080", false).unwrap();
        check_server_url("http://localhost:8080", false).unwrap();
        check_server_url("http://[::1]:8080", false).unwrap();
        let e = check_server_url("http://code.example.com", false).unwrap_err();
        assert!(e.to_string().contains("--allow-http"), "{e}");
        assert_eq!(
            check_server_url("http://code.example.com", true).unwrap(),
            ("http://code.example.com".into(), true)
        );
        for bad in [
            "https://ann:pw@code.example.com",
            "https://ann@code.example.com",
        ] {
            let e = check_server_url(bad, true).unwrap_err();
            assert!(e.to_string().contains("credentials"), "{e}");
            assert!(
                !e.to_string().contains("pw@"),
                "the secret is not repeated: {e}"
            );
        }
        assert!(check_server_url("ftp://x", true).is_err());
    }

    #[test]
    fn verification_urls_must_be_on_the_servers_origin() {
        let server = "https://code.example.com";
        check_verification_url(
            server,
            "https://code.example.com/device?user_code=BCDF-GHJK",
        )
        .unwrap();
        for bad in [
            "file:///etc/passwd",
            "https://code.example.com.evil.example/device",
            "http://code.example.com/device",
            "https://evil.example/device",
            "--help",
            "javascript:alert(1)",
            "https://x@code.example.com/device",
        ] {
            let e = check_verification_url(server, bad).unwrap_err();
            assert!(e.to_string().contains("https://code.example.com"), "{e}");
        }
        check_verification_url("http://127.0.0.1:8080", "http://127.0.0.1:8080/device").unwrap();
        assert!(
            check_verification_url("http://127.0.0.1:8080", "http://127.0.0.1:9999/device")
                .is_err()
        );
    }
}
