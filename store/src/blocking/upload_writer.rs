//! [`UploadWriter`]: `std::io::Write` into an [`Upload`] driven on the runtime.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{ObjectMeta, StoreError, Upload};

/// The default chunk size handed to the upload task.
pub const DEFAULT_CHUNK_SIZE: usize = 1024 * 1024;

/// Chunks that may wait in the channel while the task is uploading; with the chunk being filled
/// and the one being uploaded, memory stays within about four chunks (plus the upload's own
/// buffer, one S3 part).
const CHANNEL_CAPACITY: usize = 2;

/// What the upload task hands back when its channel closes: the upload, and whether every write
/// succeeded.
type TaskOutcome = (Box<dyn Upload>, Result<(), StoreError>);

/// `Write` into an [`Upload`], for use in `spawn_blocking`.
///
/// Bytes are gathered into chunks of `chunk_size` and sent through a bounded channel to a task
/// that calls [`Upload::write`], so the writing thread blocks only when the upload falls behind.
/// If the upload fails, the next `write` returns an `io::Error` with the store's message.
/// Call [`UploadWriter::finish`] to make the object visible; dropping the writer without it aborts
/// the upload.
/// `flush` does nothing: the data becomes durable at `finish`, not before.
pub struct UploadWriter {
    handle: Handle,
    chunk_size: usize,
    /// The chunk being filled.
    buffer: Vec<u8>,
    /// `None` once finished or aborted.
    sender: Option<mpsc::Sender<Bytes>>,
    /// `None` once finished or aborted.
    task: Option<JoinHandle<TaskOutcome>>,
    /// The message of the upload's failure, set by the task.
    failure: Arc<Mutex<Option<String>>>,
}

impl UploadWriter {
    /// Starts forwarding to `upload` on `handle`; `chunk_size` 0 means [`DEFAULT_CHUNK_SIZE`].
    pub fn new(upload: Box<dyn Upload>, handle: Handle, chunk_size: usize) -> Self {
        let chunk_size = if chunk_size == 0 {
            DEFAULT_CHUNK_SIZE
        } else {
            chunk_size
        };
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let failure = Arc::new(Mutex::new(None));
        let task = handle.spawn(forward_chunks(upload, receiver, Arc::clone(&failure)));
        UploadWriter {
            handle,
            chunk_size,
            buffer: Vec::with_capacity(chunk_size),
            sender: Some(sender),
            task: Some(task),
            failure,
        }
    }

    /// Sends the remaining bytes and completes the upload; the object is then visible.
    pub fn finish(mut self) -> Result<ObjectMeta, StoreError> {
        let sent = self.send_buffer();
        let (upload, outcome) = self.stop_task()?;
        let outcome = outcome.and(sent.map_err(|error| StoreError::Backend {
            detail: error.to_string(),
        }));
        match outcome {
            Ok(()) => self.handle.block_on(upload.finish()),
            Err(error) => {
                if let Err(abort_error) = self.handle.block_on(upload.abort()) {
                    tracing::warn!(error = %abort_error, "aborting a failed upload failed");
                }
                Err(error)
            }
        }
    }

    /// Discards everything written; nothing is left in the store.
    pub fn abort(mut self) -> Result<(), StoreError> {
        self.buffer.clear();
        let (upload, _outcome) = self.stop_task()?;
        self.handle.block_on(upload.abort())
    }

    /// Closes the channel and waits for the task to hand the upload back.
    fn stop_task(&mut self) -> Result<TaskOutcome, StoreError> {
        drop(self.sender.take());
        let Some(task) = self.task.take() else {
            return Err(StoreError::Backend {
                detail: "the upload was already finished or aborted".to_owned(),
            });
        };
        self.handle
            .block_on(task)
            .map_err(|join_error| StoreError::Backend {
                detail: format!("the upload task failed: {join_error}"),
            })
    }

    /// The error to report once the upload task has stopped accepting chunks.
    fn failure_error(&self) -> io::Error {
        let message = self.failure.lock().ok().and_then(|failure| failure.clone());
        io::Error::other(message.unwrap_or_else(|| "the upload was stopped".to_owned()))
    }

    /// Hands the current chunk to the upload task, blocking while the channel is full.
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.chunk_size));
        let Some(sender) = &self.sender else {
            return Err(self.failure_error());
        };
        if sender.blocking_send(Bytes::from(chunk)).is_err() {
            return Err(self.failure_error());
        }
        Ok(())
    }
}

/// The task side: writes each chunk to the upload until the channel closes or a write fails.
async fn forward_chunks(
    mut upload: Box<dyn Upload>,
    mut receiver: mpsc::Receiver<Bytes>,
    failure: Arc<Mutex<Option<String>>>,
) -> TaskOutcome {
    while let Some(chunk) = receiver.recv().await {
        if let Err(error) = upload.write(chunk).await {
            if let Ok(mut failure) = failure.lock() {
                *failure = Some(error.to_string());
            }
            return (upload, Err(error));
        }
    }
    (upload, Ok(()))
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.sender.is_none() {
            return Err(self.failure_error());
        }
        let mut rest = data;
        while !rest.is_empty() {
            let room = self.chunk_size - self.buffer.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() == self.chunk_size {
                self.send_buffer()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for UploadWriter {
    /// Aborts an upload that was neither finished nor aborted, on the runtime (no blocking here,
    /// so dropping is safe anywhere).
    fn drop(&mut self) {
        drop(self.sender.take());
        let Some(task) = self.task.take() else {
            return;
        };
        self.handle.spawn(async move {
            let Ok((upload, _outcome)) = task.await else {
                return;
            };
            if let Err(error) = upload.abort().await {
                tracing::warn!(%error, "aborting a dropped upload failed");
            }
        });
    }
}

impl std::fmt::Debug for UploadWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UploadWriter")
            .field("chunk_size", &self.chunk_size)
            .field("buffered", &self.buffer.len())
            .field("open", &self.sender.is_some())
            .finish()
    }
}
