//! The HTTP/1.1 transport under [`crate::serve`]: hyper's connections with
//! read timeouts, a connection cap and a shutdown deadline, so that slow or
//! silent clients cannot hold the server.
//!
//! Each connection has at most one request in flight (HTTP/1.1 answers in
//! order). While none is, the connection must complete its next request's
//! headers in time: [`ListenConfig::header_timeout`] from its accept,
//! [`ListenConfig::idle_timeout`] from the end of its previous answer;
//! otherwise it is closed. A request's body must arrive whole within
//! [`ListenConfig::body_timeout`] of its headers (else 408 and close).
//! Nothing times out while the server is answering: an answer may take as
//! long as the engine needs, streamed or not. (Nor is there a write
//! timeout: a client that stops reading an answer keeps its connection, and
//! its request slot, for as long as it keeps the socket open.)
//!
//! Beyond [`ListenConfig::max_connections`] open connections a new one is
//! answered at once with an OpenAI-shaped 503 and closed, so descriptors stay
//! bounded (at most the cap plus [`REFUSING`] briefly lingering refusals).
//! When the shutdown future resolves, the listener closes, idle connections
//! close, running answers get [`ListenConfig::shutdown_timeout`] to finish,
//! then every connection is dropped and [`crate::serve`] returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant, Sleep};

use crate::{ApiError, ServeError};

/// Refused connections (over the cap) handled at once; more are closed
/// without an answer.
pub const REFUSING: usize = 64;
/// How long a refused connection may linger (its answer written, its
/// request drained so that closing does not reset the answer away).
const REFUSE_LINGER: Duration = Duration::from_secs(1);
/// Pause after a failed accept (e.g. out of descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connection settings of [`crate::serve`]; every one must be above 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// A new connection must send its first request's headers within this.
    pub header_timeout: Duration,
    /// A request's body must arrive whole within this of its headers.
    pub body_timeout: Duration,
    /// A kept-alive connection must send its next request's headers within
    /// this of the end of its previous answer.
    pub idle_timeout: Duration,
    /// Open connections at most; more are answered 503 and closed. Keep it
    /// well below the process's descriptor limit (`ulimit -n`).
    pub max_connections: usize,
    /// After the shutdown future resolves, running answers get this long to
    /// finish before every connection is dropped.
    pub shutdown_timeout: Duration,
}

impl Default for ListenConfig {
    /// Headers 10 s, body 30 s, idle 30 s, 256 connections, 10 s to stop.
    fn default() -> ListenConfig {
        ListenConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_connections: 256,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ListenConfig {
    /// Fails when a setting is 0.
    pub fn check(&self) -> Result<(), ServeError> {
        let zero = [
            (self.header_timeout.is_zero(), "header timeout"),
            (self.body_timeout.is_zero(), "body timeout"),
            (self.idle_timeout.is_zero(), "idle timeout"),
            (self.max_connections == 0, "connection cap"),
            (self.shutdown_timeout.is_zero(), "shutdown timeout"),
        ];
        match zero.iter().find(|(z, _)| *z) {
            Some((_, name)) => Err(ServeError::ZeroSetting(name)),
            None => Ok(()),
        }
    }
}

/// Parses a positive number of seconds (fractions allowed), for flags.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 => Duration::try_from_secs_f64(x).map_err(|e| e.to_string()),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

/// Middleware of [`crate::router`]: a request whose declared
/// `Content-Length` is over `limit` bytes is answered 413 from its headers,
/// before any body byte is read, and its connection closed.
pub async fn refuse_declared_length(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            let answer = refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "cannot read the body: its declared {n} bytes are over the limit of {limit}"
                ),
                "request_too_large",
            );
            // A client waiting for `100 Continue` has sent nothing yet.
            if request.headers().contains_key(axum::http::header::EXPECT) {
                return closing(answer);
            }
            // What is already arriving is read and dropped for a moment
            // (at most DRAIN_LIMIT bytes): a client that sent its body at
            // once would otherwise meet a reset, not this answer, when the
            // connection closes over its unread bytes.
            let body = axum::body::to_bytes(request.into_body(), DRAIN_LIMIT);
            let _ = tokio::time::timeout(DRAIN_TIME, body).await;
            closing(answer)
        }
        _ => next.run(request).await,
    }
}

/// Before a 413 from the header, the body bytes already arriving are
/// dropped for at most this long and this many bytes.
const DRAIN_TIME: Duration = Duration::from_millis(200);
const DRAIN_LIMIT: usize = 4 << 20;

fn refusal(status: StatusCode, message: String, code: &'static str) -> Response {
    ApiError::Transport {
        status,
        message,
        code,
    }
    .into_response()
}

/// The response, with `Connection: close` (hyper then closes after it).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves `router` on `addr` on a runtime of its own (two worker threads)
/// until Ctrl-C or SIGTERM ([`crate::shutdown_signal`]), under `config`;
/// `ready` is told the bound address first (port 0 picks a free one).
pub fn serve_until_signal(
    addr: SocketAddr,
    router: Router,
    config: ListenConfig,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    config.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let bind = |source| ServeError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind)?;
        ready(listener.local_addr().map_err(bind)?);
        serve(listener, router, config, crate::shutdown_signal()).await
    })
}

/// Serves `router` on `listener` until `shutdown` resolves; see the module.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.check()?;
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let (stop, stopped) = watch::channel(());
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let conn = connection(stream, router.clone(), Arc::clone(&config), stopped.clone());
                        tasks.spawn(async move {
                            conn.await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                            tasks.spawn(refuse(stream, permit));
                        } // else dropped here: closed unanswered
                    }
                },
                // A connection reset before its accept: take the next.
                Err(e) if is_connection_error(&e) => {}
                // Out of descriptors or memory: give the system a moment.
                Err(_) => sleep(ACCEPT_BACKOFF).await,
            }
        }
    }
    drop(listener);
    let _ = stop.send(());
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = timeout(config.shutdown_timeout, drain).await;
    tasks.shutdown().await;
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Answers a connection over the cap: 503 at once, then a short drain.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let body = serde_json::to_string(
        &ApiError::Transport {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "too many open connections; retry shortly".to_string(),
            code: "too_many_connections",
        }
        .body(),
    )
    .expect("an error body serialises");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = timeout(REFUSE_LINGER, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

/// Requests in flight on one connection (0 or 1), and a wake-up on change.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
}

/// Counts a request in flight from its headers until its answer's body is
/// dropped (written or abandoned).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.changed.notify_one();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    config: Arc<ListenConfig>,
    mut stop: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = Arc::clone(&activity);
        let body_timeout = config.body_timeout;
        hyper::service::service_fn(move |request| {
            exchange(router.clone(), request, body_timeout, Arc::clone(&activity))
        })
    };
    // No hyper timer: its header timeout would apply one duration to both
    // the first request and the next ones; the deadline below does both.
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut deadline = Instant::now() + config.header_timeout;
    let mut stopping = false;
    loop {
        let idle = activity.in_flight.load(Ordering::SeqCst) == 0;
        tokio::select! {
            _ = conn.as_mut() => return,
            () = sleep_until(deadline), if idle => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 {
                    return; // no request in time: dropping `conn` closes it
                }
            }
            () = activity.changed.notified() => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 {
                    deadline = Instant::now() + config.idle_timeout;
                }
            }
            _ = stop.changed(), if !stopping => {
                // Closes an idle connection now, a busy one after its answer.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request through the router, its body under the body deadline.
async fn exchange(
    mut router: Router,
    request: hyper::Request<Incoming>,
    body_timeout: Duration,
    activity: Arc<Activity>,
) -> Result<Response, Infallible> {
    let in_flight = InFlight::new(activity);
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            timer: Some(Box::pin(sleep(body_timeout))),
            late: Arc::clone(&late),
        })
    });
    let mut response = tower_service::Service::call(&mut router, request).await?;
    if late.load(Ordering::SeqCst) {
        response = closing(refusal(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "cannot read the body: it did not arrive within {} s",
                body_timeout.as_secs_f64()
            ),
            "request_timeout",
        ));
    }
    Ok(response.map(|inner| {
        Body::new(Counted {
            inner,
            _in_flight: in_flight,
        })
    }))
}

/// A request body that fails once `timer` fires before it has all arrived.
struct DeadlineBody {
    inner: Incoming,
    timer: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() {
                this.timer = None;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(timer) = &mut this.timer {
            if timer.as_mut().poll(cx).is_ready() {
                this.timer = None;
                this.late.store(true, Ordering::SeqCst);
                return Poll::Ready(Some(Err("the request body did not arrive in time".into())));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted in flight until dropped.
struct Counted {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
