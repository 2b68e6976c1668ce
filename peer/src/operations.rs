//! The operations service, as Fabric's peer serves it on `operations.listenAddress`
//! (default `127.0.0.1:9443`), over HTTPS when `operations.tls.enabled`:
//!
//! - `GET /healthz`: 200 `{"status":"OK","time":…}`, or 503 with the failed checks of the
//!   backends chaincodes would be routed to ([`health`]);
//! - `GET /metrics`: Prometheus text, when `metrics.provider` is `prometheus` (the default
//!   here; `disabled` turns it off; Fabric's `statsd` is refused at start);
//! - `GET /logspec` → `{"spec":…}`, `PUT /logspec` with `{"spec":…}`: the log levels, in
//!   Fabric's spec syntax ([`crate::logging`]);
//! - `GET /version` → `{"CommitSHA":…,"Version":…}`.
//!
//! With `operations.tls.clientAuthRequired`, `/metrics` and `/logspec` need a client
//! certificate from one of `operations.tls.clientRootCAs.files`; `/healthz` and `/version`
//! answer without one, as in Fabric (probes carry no certificates).

mod config;
pub mod health;
pub mod metrics;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use axum_server::tls::TlsInfo;
use peer_support::ChaincodeSupport;
use serde::{Deserialize, Serialize};

pub use config::{KEYS, MetricsProvider, OperationsConfig, OperationsTls};
pub use metrics::record_transaction;

/// What the handlers share.
struct Ops {
    support: ChaincodeSupport,
    registry: Option<prometheus::Registry>,
    client_auth_required: bool,
}

/// The running service.
#[derive(Debug)]
pub struct Operations {
    /// The address it listens on.
    pub address: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `config.listen_address` (an error naming the key if it cannot) and serves the
/// operations endpoints; `registry` is served at `/metrics` (with the peer's own metrics
/// registered in it too).
pub async fn start(
    config: &OperationsConfig,
    support: ChaincodeSupport,
    registry: Option<prometheus::Registry>,
) -> Result<Operations> {
    if let Some(registry) = &registry {
        metrics::register(registry)?;
    }
    let tls = match &config.tls {
        Some(tls) => Some(tls::server_config(tls).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&config.listen_address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on operations.listenAddress {}",
                config.listen_address
            )
        })?;
    let address = listener.local_addr()?;
    let listener = listener.into_std()?;
    let ops = Arc::new(Ops {
        support,
        registry,
        client_auth_required: config.tls.as_ref().is_some_and(|t| t.client_auth_required),
    });
    let app = router(ops);
    let handle = axum_server::Handle::new();
    let task = match tls {
        Some(tls) => {
            let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle.clone());
            tokio::spawn(server.serve(app.into_make_service()))
        }
        None => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            tokio::spawn(server.serve(app.into_make_service()))
        }
    };
    tracing::info!(address = %address, tls = config.tls.is_some(), metrics = ?config.metrics, "operations service started");
    Ok(Operations {
        address,
        handle,
        task,
    })
}

impl Operations {
    /// Stops serving: requests under way get a few seconds to finish.
    pub async fn stop(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the operations service failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the operations service panicked"),
            Err(_) => tracing::warn!("the operations service did not stop in time"),
        }
    }
}

fn router(ops: Arc<Ops>) -> Router {
    let mut secure = Router::new().route("/logspec", get(get_logspec).put(put_logspec));
    if ops.registry.is_some() {
        secure = secure.route("/metrics", get(get_metrics));
    }
    let secure = secure.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&ops),
        require_client_cert,
    ));
    Router::new()
        .route("/healthz", get(get_health))
        .route("/version", get(get_version))
        .merge(secure)
        .with_state(ops)
}

/// Fabric's error body: `{"Error":"…"}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "Error": message.into() }))).into_response()
}

async fn require_client_cert(
    State(ops): State<Arc<Ops>>,
    tls: Option<Extension<Arc<TlsInfo>>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = tls.is_some_and(|Extension(info)| !info.peer_certificates.is_empty());
    if ops.client_auth_required && !presented {
        return error(StatusCode::UNAUTHORIZED, "client certificate required");
    }
    next.run(request).await
}

async fn get_health(State(ops): State<Arc<Ops>>) -> Response {
    let status = health::check(&ops.support).await;
    let code = if status.failed_checks.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(status)).into_response()
}

/// `/version`'s body, with Fabric's field names.
#[derive(Debug, Serialize)]
struct VersionInfo {
    #[serde(rename = "CommitSHA")]
    commit_sha: &'static str,
    #[serde(rename = "Version")]
    version: &'static str,
}

async fn get_version() -> Json<VersionInfo> {
    Json(VersionInfo {
        // Set by the build (`CCRT_COMMIT_SHA=$(git rev-parse --short HEAD) cargo build`).
        commit_sha: option_env!("CCRT_COMMIT_SHA").unwrap_or("development build"),
        version: env!("CARGO_PKG_VERSION"),
    })
}

async fn get_metrics(State(ops): State<Arc<Ops>>) -> Response {
    use prometheus::Encoder;
    let Some(registry) = &ops.registry else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let encoder = prometheus::TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `/logspec`'s body.
#[derive(Debug, Serialize, Deserialize)]
struct LogSpec {
    spec: String,
}

async fn get_logspec() -> Json<LogSpec> {
    Json(LogSpec {
        spec: crate::logging::spec(),
    })
}

async fn put_logspec(body: axum::body::Bytes) -> Response {
    let spec: LogSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid body: {e}; expected {{\"spec\":\"…\"}}"),
            );
        }
    };
    match crate::logging::set_spec(&spec.spec) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
