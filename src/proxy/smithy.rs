//! Adapter: the S3 client's HTTP client wrapped so that a proxy's refusal (a 407 answer to a
//! forwarded request, or to the CONNECT of a tunnel) becomes one clear error naming the proxy,
//! instead of an S3 error without a body or a bare "proxy authorization required".

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

use super::rules::Route;

/// `inner`, reporting a proxy's 407 with [`Route::refusal`]'s words (unchanged when direct).
pub fn smithy_refusals(inner: SharedHttpClient, route: &Route) -> SharedHttpClient {
    match route.refusal() {
        Some(refusal) => SharedHttpClient::new(Refusals {
            inner,
            refusal: Arc::from(refusal),
        }),
        None => inner,
    }
}

#[derive(Debug)]
struct Refusals {
    inner: SharedHttpClient,
    refusal: Arc<str>,
}

impl HttpClient for Refusals {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RefusalConnector {
            inner: self.inner.http_connector(settings, components),
            refusal: self.refusal.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct RefusalConnector {
    inner: SharedHttpConnector,
    refusal: Arc<str>,
}

/// The refusal as a connector error: not I/O nor a time-out, so the SDK does not retry it
/// (the same credentials would be refused again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(Arc<str>);

impl HttpConnector for RefusalConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let fut = self.inner.call(request);
        let refusal = self.refusal.clone();
        HttpConnectorFuture::new(async move {
            let refused = || ConnectorError::other(Box::new(Refused(refusal.clone())), None);
            match fut.await {
                Ok(resp) if resp.status().as_u16() == 407 => Err(refused()),
                Err(e) if super::refused_by_proxy(&e) => Err(refused()),
                other => other,
            }
        })
    }
}
