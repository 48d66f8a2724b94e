//! The fakes' accept loop: `axum::serve` with the bounds it lacks. A client cannot hold the server's
//! memory with connections: at most `max_connections` are served at once (more wait in the kernel's
//! backlog), a connection that sends no request head within `header_read_timeout` is closed (an idle
//! keep-alive connection waits for its next request head, so this is also the idle timeout), and shutdown
//! lets the requests in flight finish.
//!
//! A handler can also lose its own response: a response that carries the [`DropConnection`] extension is
//! never written; its connection is closed instead, as a network that fails after the server has done the
//! work would (the fake CodePipeline's `lost-response` fault).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

/// A response extension: do not send this response; close the connection instead. The client sees the
/// connection end before any byte of a response (an SDK retries that as a transient error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropConnection;

/// How many connections, and how long a silent one lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Real time a connection has to send a request head, idle keep-alive time included.
    pub header_read_timeout: Duration,
}

impl Default for ServeLimits {
    /// 1,024 connections (an agent's replicas use a few each); 30 s for a request head, well over the
    /// 200 ms a parked poll waits and the pauses of a correct client, well under the minutes an idle
    /// pool keeps a connection.
    fn default() -> Self {
        ServeLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then waits up to 10 s for the
/// connections' requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: the listener itself is fine; try again shortly
                    // (as axum::serve does) rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let lost = Arc::new(Notify::new());
        let service = {
            let (router, lost) = (router.clone(), lost.clone());
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (router, lost) = (router.clone(), lost.clone());
                async move {
                    let response = router.oneshot(req.map(axum::body::Body::new)).await?;
                    if response.extensions().get::<DropConnection>().is_some() {
                        // The connection task closes the connection; this response is never written.
                        lost.notify_one();
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        // No upgrades: nothing here speaks WebSocket.
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that went away or timed out is the client's business, not an error of ours.
            tokio::select! {
                _ = conn => {}
                () = lost.notified() => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(
        limits: ServeLimits,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new().route("/", get(|| async { "ok" })).route(
            "/lost",
            get(|| async {
                let mut r = axum::response::IntoResponse::into_response("never sent");
                r.extensions_mut().insert(DropConnection);
                r
            }),
        );
        tokio::spawn(serve(listener, router, limits, async move {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    /// Reads until the server closes the connection; what it sent.
    async fn read_to_close(s: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
        let limits = ServeLimits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(200),
        };
        let (addr, _stop) = start(limits).await;
        // Silent from the start.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut silent)).await;
        assert!(closed.is_ok(), "a silent connection stays open");
        // Idle after a request on a keep-alive connection: the same.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let said = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut idle))
            .await
            .expect("an idle keep-alive connection is closed");
        assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_for_a_free_slot() {
        let limits = ServeLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(30),
        };
        let (addr, _stop) = start(limits).await;
        let first = TcpStream::connect(addr).await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let waited = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
        assert!(
            waited.is_err(),
            "the third connection was served with two slots taken"
        );
        drop(first);
        let said = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut third))
            .await
            .expect("served once a slot is free");
        assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    }

    #[tokio::test]
    async fn a_response_marked_drop_connection_is_never_written_and_the_connection_closes() {
        let (addr, _stop) = start(ServeLimits::default()).await;
        let mut lost = TcpStream::connect(addr).await.unwrap();
        lost.write_all(b"GET /lost HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let said = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut lost))
            .await
            .expect("the connection is closed");
        assert_eq!(said, "", "nothing of the response is written");
        // The server goes on serving other connections.
        let mut next = TcpStream::connect(addr).await.unwrap();
        next.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let said = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut next))
            .await
            .expect("served");
        assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    }
}
