//! Requests: the reqwest client, redirects followed by hand (every hop checked), Range
//! re-requests, and the translation of HTTP outcomes into [`SourceError`]s (`headers`
//! reads what the answers say).

use std::future::Future;
use std::sync::Arc;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, Response, StatusCode, redirect};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::guard::AddressPolicy;
use super::headers::meta_of;
use super::remote::RemoteSource;
use super::resolve::{CheckedResolver, ForbiddenAddress, find_forbidden};
use super::{SourceCounters, SourceError, SourceLimits};

const USER_AGENT: &str = concat!("rust-transcoder/", env!("CARGO_PKG_VERSION"));

/// Opens sources. Cheap to clone; one per process shares its connection pool.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: Client,
    limits: SourceLimits,
    policy: Arc<AddressPolicy>,
    counters: SourceCounters,
}

/// A `Range: bytes=START-` request, validated with `If-Range` when there is a validator.
pub(super) struct RangeRequest<'a> {
    /// First byte wanted.
    pub(super) start: u64,
    /// The strong ETag, else the Last-Modified date, of the first response.
    pub(super) validator: Option<&'a HeaderValue>,
}

impl Fetcher {
    /// A fetcher enforcing `limits` that connects only to public addresses and to those
    /// inside `allow_nets`. Installs the `ring` TLS provider as the process default
    /// unless one is installed already.
    pub fn try_new(
        limits: SourceLimits,
        allow_nets: Vec<ipnet::IpNet>,
    ) -> Result<Self, SourceError> {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(AddressPolicy::new(allow_nets));
        let client = build_client(&limits, &policy, None)?;
        let counters = SourceCounters::default();
        let inner = Inner {
            client,
            limits,
            policy,
            counters,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Resolves names with `resolver` instead of the system resolver; its answers are
    /// still checked. (Should the client fail to rebuild, which cannot happen once
    /// [`Fetcher::try_new`] succeeded, the previous resolver stays and an error is logged.)
    pub fn with_resolver(self, resolver: Arc<dyn reqwest::dns::Resolve>) -> Self {
        let mut inner = (*self.inner).clone();
        match build_client(&inner.limits, &inner.policy, Some(resolver)) {
            Ok(client) => inner.client = client,
            Err(err) => tracing::error!("keeping the system resolver: {err}"),
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Counts received bytes and resumes in `counters`.
    pub fn with_counters(self, counters: SourceCounters) -> Self {
        let mut inner = (*self.inner).clone();
        inner.counters = counters;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Opens `url`, following redirects, and returns once a 2xx response's headers are
    /// in (within the start timeout). The body is read through the returned source, on
    /// a thread outside the runtime; `cancel` stops the open and every later read.
    pub async fn open(
        &self,
        url: &str,
        cancel: CancellationToken,
    ) -> Result<RemoteSource, SourceError> {
        let handle = tokio::runtime::Handle::current();
        let url = self.inner.policy.check_url_text(url)?;
        let response = self.bounded(&cancel, self.get(url, None)).await?;
        let meta = meta_of(&response);
        if let Some(length) = meta.content_length {
            let limit_bytes = self.inner.limits.max_source_bytes;
            if length > limit_bytes {
                return Err(SourceError::TooLarge { limit_bytes });
            }
        }
        Ok(RemoteSource::new(
            self.clone(),
            handle,
            response,
            meta,
            cancel,
        ))
    }

    pub(super) fn limits(&self) -> &SourceLimits {
        &self.inner.limits
    }

    pub(super) fn counters(&self) -> &SourceCounters {
        &self.inner.counters
    }

    /// Runs `work` within the start timeout, giving up at once when `cancel` fires.
    pub(super) async fn bounded<T>(
        &self,
        cancel: &CancellationToken,
        work: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let limit = self.inner.limits.start_timeout;
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(SourceError::Cancelled),
            outcome = tokio::time::timeout(limit, work) => outcome.unwrap_or_else(|_| {
                Err(SourceError::Timeout(format!("no response within {limit:?}")))
            }),
        }
    }

    /// GETs `url` (with a Range when given), following redirects, and returns the
    /// first non-redirect response if it is a 2xx.
    pub(super) async fn get(
        &self,
        mut url: Url,
        range: Option<&RangeRequest<'_>>,
    ) -> Result<Response, SourceError> {
        let max_redirects = self.inner.limits.max_redirects;
        for _ in 0..=max_redirects {
            self.inner.policy.check_url(&url)?;
            let response = self.send(&url, range).await?;
            if !is_redirect(response.status()) {
                return success(response);
            }
            url = redirect_target(&url, response.headers())?;
        }
        Err(SourceError::Unreachable(format!(
            "more than {max_redirects} redirects"
        )))
    }

    async fn send(
        &self,
        url: &Url,
        range: Option<&RangeRequest<'_>>,
    ) -> Result<Response, SourceError> {
        let mut request = self.inner.client.get(url.clone());
        if let Some(range) = range {
            request = request.header(header::RANGE, format!("bytes={}-", range.start));
            if let Some(validator) = range.validator {
                request = request.header(header::IF_RANGE, validator.clone());
            }
        }
        request.send().await.map_err(|err| request_error(&err))
    }
}

fn build_client(
    limits: &SourceLimits,
    policy: &Arc<AddressPolicy>,
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
) -> Result<Client, SourceError> {
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .referer(false)
        .connect_timeout(limits.connect_timeout)
        .user_agent(USER_AGENT)
        .dns_resolver(CheckedResolver::new(resolver, Arc::clone(policy)))
        .build()
        .map_err(|err| SourceError::Unreachable(format!("cannot set up HTTP: {}", describe(&err))))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The `Location` of a redirect, resolved against the URL that answered it.
fn redirect_target(current: &Url, headers: &HeaderMap) -> Result<Url, SourceError> {
    let location = headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| SourceError::Unreachable("a redirect without a Location".into()))?;
    current
        .join(location)
        .map_err(|err| SourceError::Unreachable(format!("bad redirect to {location:?}: {err}")))
}

fn success(response: Response) -> Result<Response, SourceError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let host = response.url().host_str().unwrap_or_default().to_owned();
    Err(SourceError::Unreachable(format!(
        "{host} answered {status}"
    )))
}

/// A failed request: forbidden when the resolver refused the name, else unreachable.
fn request_error(err: &reqwest::Error) -> SourceError {
    match find_forbidden(err) {
        Some(forbidden) => forbidden_name(forbidden),
        None => SourceError::Unreachable(describe(err)),
    }
}

/// The client learns that the name is refused, not where it points: the address goes
/// to the log only (the caller's span names the request).
fn forbidden_name(forbidden: &ForbiddenAddress) -> SourceError {
    let (host, ip) = (&forbidden.host, forbidden.ip);
    tracing::warn!(%host, %ip, "refused a source name resolving to a forbidden address");
    SourceError::Forbidden(forbidden.to_string())
}

/// An error and all its sources, joined with `: `.
pub(super) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what a fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_forbidden_name_logs_its_address_but_does_not_return_it() {
        let found = ForbiddenAddress {
            host: "intranet.example".into(),
            ip: "10.9.8.7".parse().unwrap(),
        };
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let err = tracing::subscriber::with_default(subscriber, || forbidden_name(&found));
        let SourceError::Forbidden(message) = err else {
            panic!("expected Forbidden, got {err:?}");
        };
        assert!(message.contains("intranet.example"), "{message}");
        assert!(!message.contains("10.9.8.7"), "{message}");
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("WARN") && log.contains("10.9.8.7"), "{log}");
    }
}
