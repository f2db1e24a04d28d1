//! Which proxy a client uses (PURE: the environment comes in as a function).

use super::uri::{ProxyError, ProxyUri};

/// The value of one proxy key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Setting {
    /// Not set (absent, empty or null): the next rule decides.
    #[default]
    Unset,
    /// `none`: connect directly, whatever `proxy_uri` or the environment say.
    Direct,
    Via(ProxyUri),
}

impl Setting {
    /// A key's text: empty is [`Setting::Unset`], `none` (any case) [`Setting::Direct`], else
    /// a proxy URL. The error never repeats the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            Ok(Self::Unset)
        } else if t.eq_ignore_ascii_case("none") {
            Ok(Self::Direct)
        } else {
            ProxyUri::parse(t).map(Self::Via)
        }
    }
}

/// The setting one client follows and the key it came from (named in messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub key: &'static str,
    pub setting: Setting,
}

impl Default for Configured {
    /// Nothing configured: the environment decides.
    fn default() -> Self {
        Self {
            key: "proxy_uri",
            setting: Setting::Unset,
        }
    }
}

/// A client's own key (`own_key` = `own`) when set, else `proxy_uri` (`general`).
pub fn configured(own_key: &'static str, own: &Setting, general: &Setting) -> Configured {
    match own {
        Setting::Unset => Configured {
            key: "proxy_uri",
            setting: general.clone(),
        },
        s => Configured {
            key: own_key,
            setting: s.clone(),
        },
    }
}

/// Where a client's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct,
    Via {
        proxy: ProxyUri,
        /// The key or environment variable that named the proxy.
        from: String,
        /// `NO_PROXY`'s list: hosts that bypass the proxy.
        no_proxy: Option<String>,
    },
}

/// Environment variables naming the proxy of an endpoint scheme, in order of precedence.
fn env_names(scheme: &str) -> [&'static str; 4] {
    if scheme.eq_ignore_ascii_case("http") {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    }
}

/// The route of a client whose endpoint has `endpoint_scheme`: the configured setting, else
/// the environment; then `NO_PROXY` (`*` alone means every host: direct).
pub fn route(
    c: &Configured,
    endpoint_scheme: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Route, ProxyError> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let (proxy, from) = match &c.setting {
        Setting::Direct => return Ok(Route::Direct),
        Setting::Via(p) => (p.clone(), c.key.to_string()),
        Setting::Unset => {
            let found = env_names(endpoint_scheme)
                .into_iter()
                .find_map(|n| set(n).map(|v| (n, v)));
            let Some((name, value)) = found else {
                return Ok(Route::Direct);
            };
            let proxy = ProxyUri::parse(&value).map_err(|message| ProxyError {
                what: name.to_string(),
                message,
            })?;
            (proxy, name.to_string())
        }
    };
    let no_proxy = set("NO_PROXY").or_else(|| set("no_proxy"));
    if no_proxy
        .as_deref()
        .is_some_and(|l| l.split(',').any(|h| h.trim() == "*"))
    {
        return Ok(Route::Direct);
    }
    Ok(Route::Via {
        proxy,
        from,
        no_proxy,
    })
}

impl Route {
    /// What to say when the proxy answered 407: it refused our credentials, or we had none.
    /// Names the proxy's host and port and the key to fix, never the password.
    pub fn refusal(&self) -> Option<String> {
        let Route::Via { proxy, from, .. } = self else {
            return None;
        };
        let hp = proxy.host_port();
        Some(match proxy.user() {
            Some(user) => format!(
                "proxy {hp} refused the credentials of user {user:?} (HTTP 407 Proxy \
                 Authentication Required): check the user and password in {from}"
            ),
            None => format!(
                "proxy {hp} requires authentication (HTTP 407 Proxy Authentication Required) \
                 and {from} gives none: write it as http://user:password@{hp}"
            ),
        })
    }
}

impl std::fmt::Display for Route {
    /// For the start-up log: the proxy with its password hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Direct => f.write_str("direct (no proxy)"),
            Route::Via {
                proxy,
                from,
                no_proxy,
            } => {
                write!(f, "through proxy {proxy} (from {from})")?;
                match no_proxy {
                    Some(l) => write!(f, ", except NO_PROXY hosts {l}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn via(s: &str) -> Setting {
        Setting::parse(s).unwrap()
    }

    fn proxy_of(r: &Route) -> (String, String) {
        match r {
            Route::Via { proxy, from, .. } => (proxy.host_port(), from.clone()),
            Route::Direct => ("direct".into(), String::new()),
        }
    }

    #[test]
    fn own_key_then_proxy_uri_then_environment() {
        let general = via("http://general:1");
        let own = via("http://own:2");
        let e = [("HTTPS_PROXY", "http://envp:3")];
        let c = configured("s3_proxy_uri", &own, &general);
        let r = route(&c, "https", env(&e)).unwrap();
        assert_eq!(proxy_of(&r), ("own:2".into(), "s3_proxy_uri".into()));
        let c = configured("s3_proxy_uri", &Setting::Unset, &general);
        let r = route(&c, "https", env(&e)).unwrap();
        assert_eq!(proxy_of(&r), ("general:1".into(), "proxy_uri".into()));
        let c = configured("s3_proxy_uri", &Setting::Unset, &Setting::Unset);
        let r = route(&c, "https", env(&e)).unwrap();
        assert_eq!(proxy_of(&r), ("envp:3".into(), "HTTPS_PROXY".into()));
    }

    #[test]
    fn none_means_direct_whatever_else_is_set() {
        assert_eq!(via(" None "), Setting::Direct);
        assert_eq!(via(""), Setting::Unset);
        let e = [("HTTPS_PROXY", "http://envp:3")];
        let c = configured("command_proxy_uri", &Setting::Direct, &via("http://g:1"));
        assert_eq!(route(&c, "https", env(&e)).unwrap(), Route::Direct);
        let c = configured("command_proxy_uri", &Setting::Unset, &Setting::Direct);
        assert_eq!(route(&c, "https", env(&e)).unwrap(), Route::Direct);
    }

    #[test]
    fn environment_by_scheme() {
        let e = [
            ("https_proxy", "http://lower-s:1"),
            ("HTTP_PROXY", "upper:2"),
            ("ALL_PROXY", "http://all:3"),
        ];
        let c = Configured::default();
        assert_eq!(
            proxy_of(&route(&c, "https", env(&e)).unwrap()),
            ("lower-s:1".into(), "https_proxy".into())
        );
        assert_eq!(
            proxy_of(&route(&c, "http", env(&e)).unwrap()),
            ("upper:2".into(), "HTTP_PROXY".into())
        );
        let only_all = [("ALL_PROXY", "http://all:3"), ("HTTPS_PROXY", " ")];
        assert_eq!(
            proxy_of(&route(&c, "https", env(&only_all)).unwrap()),
            ("all:3".into(), "ALL_PROXY".into())
        );
        assert_eq!(route(&c, "https", env(&[])).unwrap(), Route::Direct);
        let bad = [("HTTPS_PROXY", "socks5://u:secret@h:1")];
        let err = route(&c, "https", env(&bad)).unwrap_err();
        assert_eq!(err.what, "HTTPS_PROXY");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn no_proxy_applies_to_configured_and_environment_proxies() {
        let e = [("no_proxy", "s3.local, .internal")];
        let c = configured("s3_proxy_uri", &via("http://p:1"), &Setting::Unset);
        match route(&c, "https", env(&e)).unwrap() {
            Route::Via { no_proxy, .. } => {
                assert_eq!(no_proxy.as_deref(), Some("s3.local, .internal"))
            }
            r => panic!("{r:?}"),
        }
        let star = [("NO_PROXY", "a, *"), ("no_proxy", "b")];
        assert_eq!(route(&c, "https", env(&star)).unwrap(), Route::Direct);
    }

    #[test]
    fn refusal_names_the_proxy_and_key_never_the_password() {
        let c = configured(
            "s3_proxy_uri",
            &via("http://agent:hunter2@p.example:3128"),
            &Setting::Unset,
        );
        let r = route(&c, "https", env(&[])).unwrap();
        let m = r.refusal().unwrap();
        assert!(
            m.contains("p.example:3128") && m.contains("\"agent\""),
            "{m}"
        );
        assert!(m.contains("s3_proxy_uri") && !m.contains("hunter2"), "{m}");
        assert!(!r.to_string().contains("hunter2"), "{r}");
        assert!(!format!("{r:?}").contains("hunter2"));
        let c = configured(
            "s3_proxy_uri",
            &via("http://p.example:3128"),
            &Setting::Unset,
        );
        let m = route(&c, "https", env(&[])).unwrap().refusal().unwrap();
        assert!(m.contains("gives none"), "{m}");
        assert_eq!(Route::Direct.refusal(), None);
    }
}
