//! The write path: one thread runs the transactions of concurrent requests in groups, each group made durable by
//! one flush. A thread per request blocked on a lock and a condition variable cost more in context switches than
//! the writes themselves (measured: a third of the CPU at 64 clients); a queue drained by one thread does not.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::AppError;
use crate::store::{Outcome, Store, StoreError, Tx};

/// Transactions taken into one group at most: enough to cover every client waiting, small enough to keep the
/// group's latency bounded.
const MAX_GROUP: usize = 512;

trait Job: Send {
    fn run(&mut self, tx: &mut dyn Tx) -> Outcome;
    fn finish(self: Box<Self>, durable: &Result<(), StoreError>);
}

struct Typed<T, F> {
    f: Option<F>,
    result: Option<Result<T, AppError>>,
    reply: oneshot::Sender<Result<T, AppError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnOnce(&mut dyn Tx) -> Result<T, AppError> + Send,
{
    fn run(&mut self, tx: &mut dyn Tx) -> Outcome {
        let Some(f) = self.f.take() else {
            return Outcome::Abort;
        };
        // A bug in one request's transaction must not take the writer, and every later request, down with it.
        let result = catch_unwind(AssertUnwindSafe(|| f(tx)))
            .unwrap_or_else(|_| Err(AppError::Store(StoreError::Backend("a transaction panicked".into()))));
        let outcome = if result.is_ok() { Outcome::Commit } else { Outcome::Abort };
        self.result = Some(result);
        outcome
    }

    fn finish(self: Box<Self>, durable: &Result<(), StoreError>) {
        let result = match (self.result, durable) {
            (Some(Ok(_)), Err(e)) => Err(AppError::Store(StoreError::Backend(e.to_string()))),
            (Some(r), _) => r,
            (None, _) => Err(AppError::Store(StoreError::Backend("the transaction did not run".into()))),
        };
        // The caller may have gone away (a cancelled request); its write stands all the same.
        let _ = self.reply.send(result);
    }
}

/// Handle to the writer thread; dropping it lets the thread finish its group and waits for it, so the store is
/// released when the app is.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(store: Arc<dyn Store>) -> Result<Writer, AppError> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("gongwen-writer".into())
            .spawn(move || run(store.as_ref(), &jobs))
            .map_err(|e| AppError::Store(StoreError::Backend(format!("cannot start the writer thread: {e}"))))?;
        Ok(Writer { queue: Some(queue), thread: Some(thread) })
    }

    /// Runs `f` as one transaction; `Ok` means committed and durable.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, AppError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let stopped = || AppError::Store(StoreError::Backend("the writer has stopped".into()));
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        queue.send(Box::new(Typed { f: Some(f), result: None, reply })).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(store: &dyn Store, jobs: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let durable = store.transact_many(group.len(), &mut |i, tx| match group.get_mut(i) {
            Some(job) => job.run(tx),
            None => Outcome::Abort,
        });
        for job in group {
            job.finish(&durable);
        }
    }
}
