//! The `/metrics` HTTP listener: accepts connections up to a bound, optionally speaks TLS and
//! asks for basic auth as the `--web.config.file` says ([`super::web_config`]), and hands each
//! request to [`super::metrics::route`].
//!
//! Bounds, so that a client that connects and sends nothing cannot hold the listener:
//! at most [`ListenerLimits::max_connections`] connections at once (the next ones wait in the
//! kernel's backlog), a TLS handshake deadline and a deadline for reading a request's headers.
//! Like exporter-toolkit, the web config file is read again for every connection, so a renewed
//! certificate or a changed password takes effect without a restart; a file that has become
//! invalid refuses connections (it never falls back to plain HTTP or no authentication).

use super::metrics::route;
use super::web_config::WebConfig;
use crate::metrics::Metrics;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to read a request's headers (also the idle time allowed on a kept-alive connection).
    pub header_read: Duration,
    /// Time for the TLS handshake.
    pub tls_handshake: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_read: Duration::from_secs(10),
            tls_handshake: Duration::from_secs(10),
        }
    }
}

/// How the listener serves: the web config file (none: plain HTTP, no authentication) and its
/// limits.
#[derive(Debug, Clone, Default)]
pub struct ListenerOptions {
    /// `--web.config.file`.
    pub web_config: Option<PathBuf>,
    /// Bounds.
    pub limits: ListenerLimits,
}

/// What every connection shares.
struct Shared {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    options: ListenerOptions,
    /// Digests of (user, hash, password) that bcrypt accepted, so a scrape costs one bcrypt
    /// per credential, not one per request (exporter-toolkit caches the same way).
    accepted: Mutex<HashSet<[u8; 32]>>,
    /// bcrypt checks that may run at once: a client sending wrong passwords back to back
    /// cannot take more than this many blocking threads (and CPUs) from the scans.
    bcrypt_slots: Semaphore,
}

/// Concurrent bcrypt checks.
const BCRYPT_SLOTS: usize = 2;

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `cancel`; connections are
/// closed gracefully. `/readyz` answers 200 while `ready` is set.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    options: ListenerOptions,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(options.limits.max_connections.max(1)));
    let shared = Arc::new(Shared {
        metrics,
        ready,
        options,
        accepted: Mutex::new(HashSet::new()),
        bcrypt_slots: Semaphore::new(BCRYPT_SLOTS),
    });
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => return,
            permit = Arc::clone(&slots).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot accept a metrics connection");
                continue;
            }
        };
        let (shared, cancel) = (Arc::clone(&shared), cancel.clone());
        tracker.spawn(async move {
            connection(stream, shared, cancel).await;
            drop(permit);
        });
    }
}

/// One connection: the web config as it is now, TLS if it says so, then HTTP/1.1.
async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, cancel: CancellationToken) {
    let web = match &shared.options.web_config {
        None => WebConfig::default(),
        Some(path) => match WebConfig::load(path) {
            Ok(web) => web,
            Err(err) => {
                tracing::error!(error = %err, "Refusing a metrics connection: the web config is invalid");
                return;
            }
        },
    };
    let Some(tls) = web.tls.clone() else {
        return http(hyper_util::rt::TokioIo::new(stream), web, shared, cancel).await;
    };
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    match tokio::time::timeout(shared.options.limits.tls_handshake, handshake).await {
        Ok(Ok(stream)) => http(hyper_util::rt::TokioIo::new(stream), web, shared, cancel).await,
        Ok(Err(err)) => tracing::debug!(error = %err, "Metrics TLS handshake failed"),
        Err(_) => tracing::debug!("Metrics TLS handshake timed out"),
    }
}

async fn http<IO>(io: IO, web: WebConfig, shared: Arc<Shared>, cancel: CancellationToken)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let web = Arc::new(web);
    let handler = Arc::clone(&shared);
    let service = hyper::service::service_fn(move |request| {
        let (web, shared) = (Arc::clone(&web), Arc::clone(&handler));
        async move { Ok::<_, Infallible>(answer(&request, &web, &shared).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(shared.options.limits.header_read)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => if let Err(err) = result {
            tracing::debug!(error = %err, "Metrics connection ended with an error");
        },
        () = cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn answer(
    request: &Request<hyper::body::Incoming>,
    web: &WebConfig,
    shared: &Shared,
) -> Response<Full<Bytes>> {
    if !web.basic_auth_users.is_empty() && !authorized(request, web, shared).await {
        let mut response = Response::new(Full::new(Bytes::from_static(b"unauthorized\n")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"m365-posture\""),
        );
        return response;
    }
    route(request, &shared.metrics, &shared.ready)
}

/// Whether the request carries `Authorization: Basic` credentials of a configured user.
async fn authorized(
    request: &Request<hyper::body::Incoming>,
    web: &WebConfig,
    shared: &Shared,
) -> bool {
    let Some((user, password)) = basic_credentials(request) else {
        return false;
    };
    // An unknown user is checked against a fixed hash, so the answer takes as long as for a
    // known user with a wrong password (no user enumeration by timing).
    let (hash, known) = match web.basic_auth_users.get(&user) {
        Some(hash) => (hash.clone(), true),
        None => (UNKNOWN_USER_HASH.to_owned(), false),
    };
    let digest: [u8; 32] = Sha256::new()
        .chain_update(user.as_bytes())
        .chain_update([0])
        .chain_update(hash.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    if known
        && shared
            .accepted
            .lock()
            .is_ok_and(|set| set.contains(&digest))
    {
        return true;
    }
    let Ok(_slot) = shared.bcrypt_slots.acquire().await else {
        return false;
    };
    let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
        .await
        .is_ok_and(|result| result.unwrap_or(false));
    if verified && known {
        if let Ok(mut set) = shared.accepted.lock() {
            if set.len() >= ACCEPTED_CACHE_ENTRIES {
                set.clear();
            }
            set.insert(digest);
        }
    }
    verified && known
}

/// A bcrypt hash (cost 10) of a random string nobody knows.
const UNKNOWN_USER_HASH: &str = "$2b$10$VGyPksGXIPbQr5iEm5wEOeELKmQ3FKIez8G67fByzBuhmUmPoPixe";
/// Bound of the accepted-credentials cache.
const ACCEPTED_CACHE_ENTRIES: usize = 64;

fn basic_credentials(request: &Request<hyper::body::Incoming>) -> Option<(String, String)> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_unknown_user_hash_is_a_cost_10_bcrypt_hash() {
        let parts: bcrypt::HashParts = super::UNKNOWN_USER_HASH
            .parse()
            .unwrap_or_else(|_| unreachable!("not a bcrypt hash"));
        assert_eq!(parts.get_cost(), 10);
    }
}
