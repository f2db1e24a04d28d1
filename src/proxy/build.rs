//! Adapter: a [`Route`] applied to the two HTTP stacks (reqwest for the command service and
//! GitHub, aws-smithy-http-client for S3), and the recognition of a proxy's refusal inside a
//! connection error. Both stacks send the credentials with every request (forward proxy) and
//! every CONNECT (tunnel) as `Proxy-Authorization: Basic`, so a 407 challenge is answered
//! before it is made; a 407 that still comes means the credentials are wrong.

use aws_smithy_http_client::proxy::ProxyConfig;

use super::rules::Route;
use super::uri::ProxyError;

/// `b` sending its requests the way `route` says (direct: no proxy at all, the environment
/// included).
pub fn with_reqwest(
    b: reqwest::ClientBuilder,
    route: &Route,
) -> Result<reqwest::ClientBuilder, ProxyError> {
    let Route::Via {
        proxy,
        from,
        no_proxy,
    } = route
    else {
        return Ok(b.no_proxy());
    };
    let mut p = reqwest::Proxy::all(proxy.without_credentials()).map_err(|e| ProxyError {
        what: from.clone(),
        message: proxy.scrub(&format!("{proxy} is not a usable proxy: {e}")),
    })?;
    if let Some(user) = proxy.user() {
        p = p.basic_auth(&user, &proxy.password());
    }
    p = p.no_proxy(no_proxy.as_deref().and_then(reqwest::NoProxy::from_string));
    Ok(b.proxy(p))
}

/// The S3 connector's proxy for `route`.
pub fn with_smithy(route: &Route) -> Result<ProxyConfig, ProxyError> {
    let Route::Via {
        proxy,
        from,
        no_proxy,
    } = route
    else {
        return Ok(ProxyConfig::disabled());
    };
    // The URL keeps its percent-encoded credentials: hyper-util's matcher decodes them (giving
    // them apart would embed them undecoded and break on `@` or `:`).
    let mut c = ProxyConfig::all(proxy.with_credentials()).map_err(|e| ProxyError {
        what: from.clone(),
        message: proxy.scrub(&format!("{proxy} is not a usable proxy: {e}")),
    })?;
    if let Some(list) = no_proxy {
        c = c.no_proxy(list);
    }
    Ok(c)
}

/// hyper-util's words for a 407 answer to CONNECT (its `TunnelError` is not public, so the
/// cause is recognised by its text; both HTTP stacks use that tunnel).
const TUNNEL_407: &str = "proxy authorization required";

/// Whether a connection error (any depth of its causes) is a proxy's 407 to our CONNECT.
pub fn refused_by_proxy(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.to_string().contains(TUNNEL_407) {
            return true;
        }
        cur = c.source();
    }
    false
}
