//! A proxy URL whose password stays out of every printed form (PURE).

use percent_encoding::percent_decode_str;

/// A proxy that cannot be used: `what` is the key or environment variable it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ProxyError {
    pub what: String,
    pub message: String,
}

/// An `http://` or `https://` proxy, optionally with `user:password@` (percent-encoded, as in
/// any URL: `p%40ss` is the password `p@ss`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUri {
    url: reqwest::Url,
}

impl ProxyUri {
    /// Parses a proxy URL; a value without a scheme (`proxy:3128`, as curl takes it) is
    /// `http://`. The error never repeats the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let full = if t.contains("://") {
            t.to_string()
        } else {
            format!("http://{t}")
        };
        let url = reqwest::Url::parse(&full)
            .map_err(|e| format!("{:?} is not a proxy URL: {e}", redact(t)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{:?} is not a proxy URL: the scheme must be http:// or https://",
                redact(t)
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "{:?} is not a proxy URL: it names no host",
                redact(t)
            ));
        }
        Ok(Self { url })
    }

    /// `host:port`, the port being the scheme's default when the URL gives none.
    pub fn host_port(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    /// The user name, percent-decoded; None when the URL has none.
    pub fn user(&self) -> Option<String> {
        Some(self.url.username())
            .filter(|u| !u.is_empty())
            .map(|u| percent_decode_str(u).decode_utf8_lossy().into_owned())
    }

    /// The password, percent-decoded ("" when only a user is given).
    pub(crate) fn password(&self) -> String {
        self.url
            .password()
            .map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The URL with its credentials, still percent-encoded, for an HTTP library that decodes
    /// them itself. Never for printing.
    pub(crate) fn with_credentials(&self) -> &str {
        self.url.as_str()
    }

    /// `scheme://host:port`, for libraries given the credentials apart.
    pub fn without_credentials(&self) -> String {
        let mut u = self.url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    }

    /// `text` with this proxy's password (as written and decoded) replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Some(raw) = self.url.password().filter(|p| !p.is_empty()) {
            out = out.replace(raw, "***");
        }
        let decoded = self.password();
        if !decoded.is_empty() {
            out = out.replace(&decoded, "***");
        }
        out
    }
}

impl std::fmt::Display for ProxyUri {
    /// The URL with the password shown as `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut u = self.url.clone();
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        f.write_str(u.as_str())
    }
}

impl std::fmt::Debug for ProxyUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUri({self})")
    }
}

/// `text` (perhaps not a URL at all) with whatever stands between `user:` and the last `@` of
/// its authority shown as `***`: what an error may print of a value that did not parse.
pub fn redact(text: &str) -> String {
    let (scheme, rest) = match text.find("://") {
        Some(i) => text.split_at(i + 3),
        None => ("", text),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}{user}{hidden}@{host}{tail}")
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_decoded_and_never_printed() {
        let p = ProxyUri::parse("http://ag%40ent:p%40ss%3Aw0rd@proxy.example:3128").unwrap();
        assert_eq!(p.user().as_deref(), Some("ag@ent"));
        assert_eq!(p.password(), "p@ss:w0rd");
        assert_eq!(p.host_port(), "proxy.example:3128");
        assert_eq!(p.to_string(), "http://ag%40ent:***@proxy.example:3128/");
        assert_eq!(
            format!("{p:?}"),
            "ProxyUri(http://ag%40ent:***@proxy.example:3128/)"
        );
        assert_eq!(p.without_credentials(), "http://proxy.example:3128/");
        assert_eq!(p.scrub("x p%40ss%3Aw0rd y p@ss:w0rd"), "x *** y ***");
    }

    #[test]
    fn defaults_and_refusals() {
        let p = ProxyUri::parse("proxy.example:8080").unwrap();
        assert_eq!(p.without_credentials(), "http://proxy.example:8080/");
        assert_eq!(p.user(), None);
        assert_eq!(ProxyUri::parse("https://p").unwrap().host_port(), "p:443");
        assert_eq!(ProxyUri::parse("http://p").unwrap().host_port(), "p:80");
        let e = ProxyUri::parse("socks5://u:secret@p:1080").unwrap_err();
        assert!(
            e.contains("http:// or https://") && !e.contains("secret"),
            "{e}"
        );
        let e = ProxyUri::parse("http://u:secret@[bad").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn redaction_of_unparsed_text() {
        assert_eq!(redact("http://u:pw@h:1/x"), "http://u:***@h:1/x");
        assert_eq!(redact("u:p@w@h"), "u:***@h");
        assert_eq!(redact("http://u@h"), "http://u@h");
        assert_eq!(redact("::not a url::"), "::not a url::");
    }
}
