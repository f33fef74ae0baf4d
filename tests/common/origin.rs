//! A loopback media origin with chosen misbehaviours, and a `Canary` that counts
//! connections.
//!
//! `Origin` is a real HTTP server (axum) on `127.0.0.1:0`, running on its own tokio
//! runtime so that synchronous and async tests can both use it. It serves files from
//! `tests/fixtures` or byte blobs registered with [`Origin::add_blob`]; each
//! [`Origin::url`] call registers a route with one [`Behaviour`]. It records every
//! request (path, `Range`, `If-Range`) and counts connections and body bytes sent.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::serve::ListenerExt;
use bytes::Bytes;
use tokio::runtime::Runtime;

use body::{Plan, Tail, respond};

mod body;

/// How the origin answers one route.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with a Content-Length; Range headers are ignored (no Accept-Ranges).
    Plain,
    /// Accept-Ranges, a strong ETag, and 206 + Content-Range for `Range: bytes=N-`
    /// (an `If-Range` that does not match the ETag gets the whole body with 200).
    Ranges,
    /// No Content-Length (chunked transfer encoding); Range headers are ignored.
    Chunked,
    /// This many relative 302 redirects, then served like `Ranges`.
    Redirects(usize),
    /// One 302 redirect to this Location.
    RedirectTo(String),
    /// Like `Ranges`, but dripped at about this many bytes per second.
    Drip {
        /// Sending rate.
        bytes_per_sec: usize,
    },
    /// Like `Ranges`, but every response hangs at byte `after` of the file (a resumed
    /// request from there on hangs at once): an origin that is stuck.
    Stall {
        /// Where the body hangs.
        after: usize,
    },
    /// Like `Ranges`, but the first response hangs after `after` bytes (a half-open
    /// connection); later requests are served whole.
    StallOnce {
        /// Bytes sent before the first response hangs.
        after: usize,
    },
    /// Declares the full length, sends `after` bytes, then drops the connection.
    Die {
        /// Bytes sent before dying (counted from the requested start).
        after: usize,
        /// Whether Range requests are supported (as `Ranges`) or ignored (as `Plain`).
        ranges: bool,
        /// Die on every request, or on the first request only.
        every_request: bool,
    },
    /// A body without a Content-Length (chunked) whose first connection drops after
    /// `after` bytes; later requests get the whole body (from the Range start, when
    /// ranges are supported).
    LiveDrop {
        /// Bytes sent before the first connection drops.
        after: usize,
        /// Whether Range requests are supported (as `Ranges`, without the length).
        ranges: bool,
        /// Whether the response carries an `icy-name` header, like an Icecast stream.
        icy: bool,
    },
    /// Answer with this status and a short text body.
    Status(u16),
}

/// One request the origin received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Path and query, e.g. `/r0/flac_s16.flac?hop=1`.
    pub path: String,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `If-Range` header.
    pub if_range: Option<String>,
}

/// A running loopback origin; stopped when dropped.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<Runtime>,
}

#[derive(Default)]
struct Shared {
    routes: Mutex<Vec<Route>>,
    blobs: Mutex<HashMap<String, Bytes>>,
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    sent: Arc<AtomicU64>,
}

struct Route {
    name: String,
    behaviour: Behaviour,
    hits: usize,
}

impl Origin {
    /// Starts an origin on `127.0.0.1:0`.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&shared));
        let counted = Arc::clone(&shared);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let listener = listener.tap_io(move |_| {
                counted.connections.fetch_add(1, Ordering::SeqCst);
            });
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// The origin's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `bytes` under `name` (instead of a fixture file of that name).
    pub fn add_blob(&self, name: &str, bytes: impl Into<Bytes>) {
        self.shared
            .blobs
            .lock()
            .unwrap()
            .insert(name.to_owned(), bytes.into());
    }

    /// A URL serving `name` (a blob, else a fixture file) with `behaviour`.
    pub fn url(&self, name: &str, behaviour: Behaviour) -> String {
        let mut routes = self.shared.routes.lock().unwrap();
        routes.push(Route {
            name: name.to_owned(),
            behaviour,
            hits: 0,
        });
        format!("http://{}/r{}/{name}", self.addr, routes.len() - 1)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Body bytes handed to the HTTP server so far (all routes).
    pub fn bytes_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = Recorded {
        path: request
            .uri()
            .path_and_query()
            .map_or("/".into(), ToString::to_string),
        range: text(header::RANGE),
        if_range: text(header::IF_RANGE),
    };
    shared.requests.lock().unwrap().push(recorded.clone());
    let Some((name, behaviour, hit)) = route(&shared, request.uri().path()) else {
        return status(404);
    };
    let hop: usize = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("hop="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let plan = match plan_of(&name, behaviour, hit, hop) {
        Ok(plan) => plan,
        Err(response) => return *response,
    };
    let Some(data) = content(&shared, &name) else {
        return status(404);
    };
    respond(&shared.sent, &name, data, &plan, &recorded)
}

/// How to answer hit number `hit` (from 0) of a route, at redirect hop `hop`: a body
/// plan, or a complete response.
fn plan_of(
    name: &str,
    behaviour: Behaviour,
    hit: usize,
    hop: usize,
) -> Result<Plan, Box<Response>> {
    Ok(match behaviour {
        Behaviour::Status(code) => return Err(Box::new(status(code))),
        Behaviour::RedirectTo(location) => return Err(Box::new(redirect(&location))),
        Behaviour::Redirects(hops) if hop < hops => {
            return Err(Box::new(redirect(&format!("{name}?hop={}", hop + 1))));
        }
        Behaviour::Plain => Plan::new(false),
        Behaviour::Ranges | Behaviour::Redirects(_) => Plan::new(true),
        Behaviour::Chunked => Plan::new(false).chunked(),
        Behaviour::Drip { bytes_per_sec } => Plan {
            drip: Some(bytes_per_sec),
            ..Plan::new(true)
        },
        Behaviour::Stall { after } => Plan::new(true).cut_at(after, Tail::Stall),
        Behaviour::StallOnce { after } if hit == 0 => Plan::new(true).cut(after, Tail::Stall),
        Behaviour::StallOnce { .. } => Plan::new(true),
        Behaviour::Die {
            after,
            ranges,
            every_request,
        } if every_request || hit == 0 => Plan::new(ranges).cut(after, Tail::Die),
        Behaviour::Die { ranges, .. } => Plan::new(ranges),
        Behaviour::LiveDrop { after, ranges, icy } => {
            let plan = Plan {
                icy,
                ..Plan::new(ranges).chunked()
            };
            if hit == 0 {
                plan.cut(after, Tail::Die)
            } else {
                plan
            }
        }
    })
}

/// The route for `/r{ID}/{NAME}`: its name, behaviour and how often it was hit before.
fn route(shared: &Shared, path: &str) -> Option<(String, Behaviour, usize)> {
    let (id, _) = path.strip_prefix("/r")?.split_once('/')?;
    let mut routes = shared.routes.lock().unwrap();
    let route = routes.get_mut(id.parse::<usize>().ok()?)?;
    route.hits += 1;
    Some((route.name.clone(), route.behaviour.clone(), route.hits - 1))
}

fn content(shared: &Shared, name: &str) -> Option<Bytes> {
    if let Some(blob) = shared.blobs.lock().unwrap().get(name) {
        return Some(blob.clone());
    }
    std::fs::read(super::fixture_path(name))
        .ok()
        .map(Bytes::from)
}

fn status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap();
    let mut response = Response::new(Body::from(format!("status {code}")));
    *response.status_mut() = status;
    response
}

fn redirect(location: &str) -> Response {
    let mut response = status(302);
    response
        .headers_mut()
        .insert(header::LOCATION, location.parse().unwrap());
    response
}

/// A TCP listener that accepts and immediately closes connections, counting them, so
/// that a test can assert a refused URL caused no connection at all.
pub struct Canary {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Canary {
    /// A canary on `127.0.0.1:0`.
    pub fn start() -> Self {
        Self::bind("127.0.0.1:0").unwrap()
    }

    /// A canary on `addr` (e.g. `[::1]:0`), if that address can be bound here.
    pub fn bind(addr: &str) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Ok(Self {
            addr,
            accepted,
            stop,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _wake = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}
