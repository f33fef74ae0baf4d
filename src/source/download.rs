//! The download task: pulls one response body into a bounded channel.
//!
//! The buffer is bounded in bytes (a fast origin hands over chunks of hundreds of KiB,
//! so a bound in chunks would let every stream hold megabytes): the download runs ahead
//! of the reader by at most [`BUFFER_BYTES`] (or one larger chunk) and a slow reader
//! slows the download (TCP flow control does the rest). The task ends with the body, on
//! cancellation, or when its [`Download`] is dropped.

use std::sync::Arc;

use bytes::Bytes;
use prometheus::IntCounter;
use reqwest::Response;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fetch::describe;

/// Chunks buffered between the download task and the reader, at most.
const BUFFER_CHUNKS: usize = 8;
/// Bytes buffered between the download task and the reader, at most (a single larger
/// chunk is let through alone).
const BUFFER_BYTES: usize = 256 * 1024;

/// One item from the body: a chunk, or why the body broke off. The channel closing
/// after the last chunk means the origin ended the body cleanly.
pub(super) type Piece = Result<Bytes, String>;

/// A piece and the share of the byte budget it holds until the reader is done with it.
type Budgeted = (Piece, Option<OwnedSemaphorePermit>);

/// A running download of one response body.
pub(super) struct Download {
    pieces: mpsc::Receiver<Budgeted>,
    /// The budget of the piece the reader holds; returned when it asks for the next.
    held: Option<OwnedSemaphorePermit>,
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
        let budget = Arc::new(Semaphore::new(BUFFER_BYTES));
        let task = handle.spawn(pump(response, sender, budget, bytes, cancel));
        Self {
            pieces,
            held: None,
            task,
        }
    }

    /// The next piece; `None` once the body ended cleanly. The previous piece must have
    /// been read: its bytes go back to the budget.
    pub(super) async fn next(&mut self) -> Option<Piece> {
        self.held = None;
        let (piece, permit) = self.pieces.recv().await?;
        self.held = permit;
        Some(piece)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut response: Response,
    sender: mpsc::Sender<Budgeted>,
    budget: Arc<Semaphore>,
    bytes: IntCounter,
    cancel: CancellationToken,
) {
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => return,
            () = sender.closed() => return,
            chunk = response.chunk() => chunk,
        };
        let item = match chunk {
            Ok(Some(chunk)) => {
                bytes.inc_by(chunk.len() as u64);
                let share = chunk.len().clamp(1, BUFFER_BYTES) as u32;
                let permit = tokio::select! {
                    () = cancel.cancelled() => return,
                    permit = Arc::clone(&budget).acquire_many_owned(share) => permit.ok(),
                };
                (Ok(chunk), permit)
            }
            Ok(None) => return,
            Err(err) => (Err(describe(&err)), None),
        };
        let failed = item.0.is_err();
        if sender.send(item).await.is_err() || failed {
            return;
        }
    }
}
