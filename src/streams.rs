//! The running streams: a fixed number of slots, and for each running stream the
//! channel that changes its filters live. A slot is held by a [`StreamSlot`] that the
//! stream's job owns; the response body cancels the job when it ends or the client
//! leaves, so the slot is freed then.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dsp::Filters;
use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::pipeline::FilterUpdate;

/// The slots and the registry of running streams.
pub struct Streams {
    slots: Arc<Semaphore>,
    max_streams: usize,
    running: Mutex<HashMap<Uuid, Running>>,
    active_gauge: IntGauge,
    abort_all: CancellationToken,
}

/// What the service keeps of a running stream.
struct Running {
    filters: Filters,
    updates: Sender<FilterUpdate>,
}

/// A held stream slot; dropping it frees the slot and forgets the stream.
pub struct StreamSlot {
    streams: Arc<Streams>,
    id: Uuid,
    _permit: OwnedSemaphorePermit,
    /// Fires when the stream must stop: the slot was dropped, or the server aborts all.
    pub cancel: CancellationToken,
}

impl Streams {
    /// `max_streams` slots; `active_gauge` follows the number held.
    pub fn new(max_streams: usize, active_gauge: IntGauge) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            running: Mutex::new(HashMap::new()),
            active_gauge,
            abort_all: CancellationToken::new(),
        })
    }

    /// Takes a free slot for stream `id` at once, or `None` when all are busy.
    pub fn try_acquire(self: &Arc<Self>, id: Uuid) -> Option<StreamSlot> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        self.active_gauge.inc();
        Some(StreamSlot {
            streams: Arc::clone(self),
            id,
            _permit: permit,
            cancel: self.abort_all.child_token(),
        })
    }

    /// Streams holding a slot.
    pub fn active(&self) -> usize {
        self.max_streams - self.slots.available_permits()
    }

    /// The configured number of slots.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// Stops every stream (the end of a drain).
    pub fn abort_all(&self) {
        self.abort_all.cancel();
    }

    /// The filters of running stream `id`, to merge a partial change into.
    pub fn filters(&self, id: Uuid) -> Option<Filters> {
        self.lock().get(&id).map(|running| running.filters.clone())
    }

    /// Sends `update` to stream `id`; `false` when the stream is not running. The
    /// stream's filters are only recorded once its pipeline confirms the change
    /// ([`Self::set_filters`]), so a refused change never becomes the base of the next.
    pub fn send_update(&self, id: Uuid, update: FilterUpdate) -> bool {
        self.lock()
            .get(&id)
            .is_some_and(|stream| stream.updates.send(update).is_ok())
    }

    /// Records the filters stream `id`'s pipeline has confirmed.
    pub fn set_filters(&self, id: Uuid, filters: Filters) {
        if let Some(stream) = self.lock().get_mut(&id) {
            stream.filters = filters;
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StreamSlot {
    /// Makes the stream reachable for live filter changes.
    pub fn register(&self, filters: Filters, updates: Sender<FilterUpdate>) {
        self.streams
            .lock()
            .insert(self.id, Running { filters, updates });
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.streams.lock().remove(&self.id);
        self.streams.active_gauge.dec();
    }
}
