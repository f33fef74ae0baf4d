//! The download task: pulls one response body into a bounded channel.
//!
//! The channel holds a few chunks, so the download runs ahead of the reader by a
//! bounded amount and a slow reader slows the download (TCP flow control does the
//! rest). The task ends with the body, on cancellation, or when its [`Download`] is
//! dropped.

use bytes::Bytes;
use prometheus::IntCounter;
use reqwest::Response;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fetch::describe;

/// Chunks buffered between the download task and the reader.
const BUFFER_CHUNKS: usize = 8;

/// One item from the body: a chunk, or why the body broke off. The channel closing
/// after the last chunk means the origin ended the body cleanly.
pub(super) type Piece = Result<Bytes, String>;

/// A running download of one response body.
pub(super) struct Download {
    pieces: mpsc::Receiver<Piece>,
    task: JoinHandle<()>,
}

impl Download {
    /// Starts downloading `response`'s body on `handle`, counting bytes in `bytes`.
    pub(super) fn start(
        handle: &Handle,
        response: Response,
        bytes: IntCounter,
        cancel: CancellationToken,
    ) -> Self {
        let (sender, pieces) = mpsc::channel(BUFFER_CHUNKS);
        let task = handle.spawn(pump(response, sender, bytes, cancel));
        Self { pieces, task }
    }

    /// The next piece; `None` once the body ended cleanly.
    pub(super) async fn next(&mut self) -> Option<Piece> {
        self.pieces.recv().await
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut response: Response,
    sender: mpsc::Sender<Piece>,
    bytes: IntCounter,
    cancel: CancellationToken,
) {
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => return,
            () = sender.closed() => return,
            chunk = response.chunk() => chunk,
        };
        let piece = match chunk {
            Ok(Some(chunk)) => {
                bytes.inc_by(chunk.len() as u64);
                Ok(chunk)
            }
            Ok(None) => return,
            Err(err) => Err(describe(&err)),
        };
        let failed = piece.is_err();
        if sender.send(piece).await.is_err() || failed {
            return;
        }
    }
}
