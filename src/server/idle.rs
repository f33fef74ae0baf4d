//! Connections whose writes time out: a client that stops reading fills its socket
//! buffers, after which the server can neither send it anything nor poll its response
//! body (which holds the stream's slot). A write that makes no progress for the client
//! idle timeout fails instead, so the connection closes, the body is dropped, the slot
//! is freed and the stream's pipeline is stopped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A listener whose connections fail a write that is stuck for `idle`.
pub struct IdleWriteListener<L> {
    inner: L,
    idle: Duration,
}

impl<L> IdleWriteListener<L> {
    /// Wraps `inner`; its connections get a write idle timeout of `idle`.
    pub fn new(inner: L, idle: Duration) -> Self {
        Self { inner, idle }
    }
}

impl<L: Listener> Listener for IdleWriteListener<L> {
    type Io = IdleWriteIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        let io = IdleWriteIo {
            inner: io,
            idle: self.idle,
            stuck: None,
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection whose pending writes fail with `TimedOut` after `idle` without progress.
pub struct IdleWriteIo<T> {
    inner: T,
    idle: Duration,
    /// Runs while writes are pending; reset by every write that goes through.
    stuck: Option<Pin<Box<Sleep>>>,
}

impl<T> IdleWriteIo<T> {
    /// Passes a finished write through (and resets the timer), or keeps waiting for a
    /// pending one until the timer runs out.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stuck = None;
            return poll;
        }
        let idle = self.idle;
        let timer = self
            .stuck
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {idle:?}"),
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleWriteIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleWriteIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_slow_reader_keeps_its_connection_and_a_stopped_one_loses_it() {
        let (mut client, server) = tokio::io::duplex(16);
        let mut io = IdleWriteIo {
            inner: server,
            idle: Duration::from_secs(1),
            stuck: None,
        };
        let reader = tokio::spawn(async move {
            let mut buf = [0; 16];
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                client.read_exact(&mut buf).await.unwrap();
            }
            client
        });
        io.write_all(&[0; 80]).await.unwrap();
        let error = io.write_all(&[0; 32]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(reader.await.unwrap());
    }
}
