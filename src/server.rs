//! Running the service: tracing, the listener, and the drain on SIGTERM or ctrl-c —
//! report draining and refuse new streams, let running streams finish until the drain
//! timeout, abort the rest, then stop. Connections whose client stops reading are
//! closed after the client idle timeout (`idle`).

mod idle;

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{AppState, app};
use crate::config::Config;
use idle::IdleWriteListener;

/// How often the drain looks at the number of running streams.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// How long aborted streams and idle connections get to close after the drain.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Starts the service described by `config` and runs it until SIGTERM or ctrl-c.
pub fn run(config: Config) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("transcoder-io")
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(config.bind).await?;
        tracing::info!(address = %listener.local_addr()?, "listening");
        let state = AppState::try_new(config)?;
        serve(listener, state, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Serves `state` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closed = CancellationToken::new();
    let drain = tokio::spawn(drain_after(shutdown, Arc::clone(&state), closed.clone()));
    let send_buffer_bytes = state.config.send_buffer_bytes;
    let listener =
        listener.tap_io(move |connection| limit_send_buffer(connection, send_buffer_bytes));
    let listener = IdleWriteListener::new(listener, state.config.client_idle_timeout());
    let server =
        axum::serve(listener, app(state)).with_graceful_shutdown(closed.clone().cancelled_owned());
    let result = tokio::select! {
        result = server => result,
        () = async { closed.cancelled().await; tokio::time::sleep(CLOSE_GRACE).await } => Ok(()),
    };
    drain.abort();
    result
}

/// Caps the kernel's send buffer of a client connection. Left to itself it grows to
/// megabytes, which lets a pipeline run tens of seconds of audio ahead of a client that
/// plays in real time (costing memory, delaying live filter changes, and taking CPU from
/// streams still waiting for their first byte); a small buffer passes the client's pace
/// back to the pipeline.
fn limit_send_buffer(connection: &mut tokio::net::TcpStream, bytes: usize) {
    if bytes == 0 {
        return;
    }
    if let Err(error) = socket2::SockRef::from(&*connection).set_send_buffer_size(bytes) {
        tracing::warn!(%error, "could not limit the send buffer");
    }
}

/// Waits for `shutdown`, drains, then fires `closed`.
async fn drain_after(
    shutdown: impl Future<Output = ()>,
    state: Arc<AppState>,
    closed: CancellationToken,
) {
    shutdown.await;
    state.begin_drain();
    let running = state.streams.active();
    tracing::info!(running, "draining");
    let deadline = tokio::time::Instant::now() + state.config.drain_timeout();
    while state.streams.active() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let aborted = state.streams.active();
    if aborted > 0 {
        tracing::warn!(aborted, "drain timeout: aborting the remaining streams");
        state.streams.abort_all();
    }
    closed.cancel();
}

/// Completes on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Log lines on stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
