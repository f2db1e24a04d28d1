//! Proxies (docs/proxies.md): which proxy, if any, each outgoing HTTP client uses, applied the
//! same way to the command client (reqwest) and to S3 (aws-smithy-http-client), and the clear
//! error when a proxy refuses the agent (HTTP 407).
//!
//! The choice, per client (PURE, [`route`]): its own key (`command_proxy_uri`, `s3_proxy_uri`)
//! when set, else `proxy_uri`, else the environment (`HTTPS_PROXY`/`https_proxy` for https://
//! endpoints, `http_proxy`/`HTTP_PROXY` for http://, then `ALL_PROXY`). A key set to `none`
//! means "connect directly" and ends the search. `NO_PROXY`/`no_proxy` exempts its hosts from
//! whichever proxy was chosen. GitHub downloads follow the environment only (as the official
//! agent); instance metadata never goes through a proxy (`control::imds` builds its client
//! with no proxy at all, not through this module).
//!
//! Invariant: a proxy's password never appears in a Display or Debug form, a log line or an
//! error; only the scheme, the user name, the host and the port do.

mod build;
mod rules;
mod smithy;
mod uri;

pub use build::{refused_by_proxy, with_reqwest, with_smithy};
pub use rules::{configured, route, Configured, Route, Setting};
pub use smithy::smithy_refusals;
pub use uri::{redact, ProxyError, ProxyUri};

/// [`route`] with this process's environment.
pub fn route_from_env(c: &Configured, endpoint_scheme: &str) -> Result<Route, ProxyError> {
    route(c, endpoint_scheme, |k| std::env::var(k).ok())
}
