//! GitHub bundles (docs/behaviour/bundles.md#github-download): `GET
//! <api>/repos/<account>/<repo>/<tarball|zipball>/<commit>`, redirects followed (bounded),
//! `Authorization: token <t>` when a token is given, error statuses retried after the configured
//! delays (officially 10, 30, 90 s) and reported with every status seen. Network errors are not
//! retried, as in the official agent.
//!
//! Invariant: only a success status's body is passed on, in order; the result is the last piece.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, USER_AGENT};
use tokio::sync::mpsc::Sender;

use super::rules;
use super::stream::{Piece, Progress};
use super::{GitHubSettings, TransferError, Tuning};

/// Redirects followed at most (GitHub answers with one, to its archive host).
const MAX_REDIRECTS: usize = 5;

#[derive(Clone)]
pub struct GitHub {
    client: reqwest::Client,
    /// For the message of a proxy's 407.
    route: crate::proxy::Route,
}

impl GitHub {
    pub fn new(settings: &GitHubSettings, tuning: &Tuning) -> Result<Self, TransferError> {
        let b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .connect_timeout(tuning.connect_timeout)
            .read_timeout(tuning.idle_timeout);
        let scheme = settings
            .api_base
            .split_once("://")
            .map_or("https", |(s, _)| s);
        let route = crate::proxy::route_from_env(&settings.proxy, scheme)
            .map_err(|e| TransferError::Config(e.to_string()))?;
        let client = crate::proxy::with_reqwest(b, &route)
            .map_err(|e| TransferError::Config(e.to_string()))?
            .build()
            .map_err(|e| TransferError::Config(format!("GitHub HTTP client: {e}")))?;
        Ok(Self { client, route })
    }

    pub async fn download(
        self,
        url: String,
        token: Option<String>,
        tuning: Tuning,
        tx: Sender<Piece>,
    ) {
        let last = match self.run(&url, token.as_deref(), &tuning, &tx).await {
            Ok(true) => Piece::Done,
            Ok(false) => return,
            Err(e) => Piece::Failed(e),
        };
        let _ = tx.send(last).await;
    }

    async fn run(
        &self,
        url: &str,
        token: Option<&str>,
        tuning: &Tuning,
        tx: &Sender<Piece>,
    ) -> Result<bool, TransferError> {
        let net = |e: reqwest::Error| TransferError::GitHub {
            url: url.to_string(),
            detail: match self
                .route
                .refusal()
                .filter(|_| crate::proxy::refused_by_proxy(&e))
            {
                Some(refused) => refused,
                None => error_chain(&e),
            },
        };
        let mut codes: Vec<String> = Vec::new();
        let mut attempt = 0;
        let mut resp = loop {
            let mut req = self.client.get(url).header(
                USER_AGENT,
                concat!("codedeploy-agent/", env!("CARGO_PKG_VERSION")),
            );
            if let Some(t) = token {
                let mut v = HeaderValue::from_str(&format!("token {t}")).map_err(|_| {
                    TransferError::GitHub {
                        url: url.to_string(),
                        detail:
                            "the GitHub access token contains characters not allowed in a header"
                                .into(),
                    }
                })?;
                v.set_sensitive(true);
                req = req.header(AUTHORIZATION, v);
            }
            let resp = req.send().await.map_err(net)?;
            let status = resp.status();
            if status.is_success() {
                break resp;
            }
            if let Some(refused) = self.route.refusal().filter(|_| status.as_u16() == 407) {
                return Err(TransferError::GitHub {
                    url: url.to_string(),
                    detail: refused,
                });
            }
            codes.push(format!(
                "{} '{}'",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ));
            let Some(delay) = tuning.github_delays.get(attempt) else {
                return Err(TransferError::GitHubStatus {
                    url: url.to_string(),
                    retries: tuning.github_delays.len(),
                    codes: codes.join("; "),
                });
            };
            // Spread like every other retry of the agent (`crate::random`).
            let delay = crate::random::spread(*delay, crate::control::JITTER);
            tracing::warn!(
                "GitHub answered {} for {url}; retrying in {:.1} s",
                status,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        };
        tracing::info!("Downloading bundle from {url}");
        let mut progress = Progress::new(url.to_string());
        progress.set_total(resp.content_length());
        if let Some(len) = resp.content_length() {
            if tx.send(Piece::Size(len)).await.is_err() {
                return Ok(false);
            }
        }
        let mut received = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(net)? {
            received += chunk.len() as u64;
            progress.tick(received);
            if tx.send(Piece::Data(chunk, None)).await.is_err() {
                return Ok(false);
            }
        }
        tracing::info!(
            "Download complete from {url} ({received} bytes, {:.1} MiB/s)",
            rules::mib_per_s(received, progress.elapsed())
        );
        Ok(true)
    }
}

/// Official retry delays after an error status.
pub const OFFICIAL_DELAYS: [Duration; 3] = [
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(90),
];

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
