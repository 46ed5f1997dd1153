//! The write path: one thread runs the transactions of concurrent requests in groups, each group made durable by
//! one flush. A thread per request blocked on a lock and a condition variable cost more in context switches than
//! the writes themselves (measured: a third of the CPU at 64 clients); a queue drained by one thread does not.
//!
//! A second thread waits for each group's flush and only then answers its requests, so the writer goes on
//! running the next group's transactions while the disk works: staging and flushing overlap instead of taking
//! turns. A group's answers never go out before its flush has returned.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::AppError;
use crate::store::{Outcome, Store, StoreError, Ticket, Tx};

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
            // A refusal too: it may rest on an earlier write of the group, or of the one before, that is now lost.
            (_, Err(e)) => Err(AppError::Store(e.clone())),
            (Some(r), Ok(())) => r,
            (None, Ok(())) => Err(AppError::Store(StoreError::Backend("the transaction did not run".into()))),
        };
        // The caller may have gone away (a cancelled request); its write stands all the same.
        let _ = self.reply.send(result);
    }
}

/// A staged group on its way to the thread that waits for its flush.
type Staged = (Vec<Box<dyn Job>>, Result<Ticket, StoreError>);

/// Handle to the writer and flush-waiter threads; dropping it lets them finish their groups and waits for them,
/// so the store is released when the app is.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(store: Arc<dyn Store>) -> Result<Writer, AppError> {
        let spawn_error =
            |e: std::io::Error| AppError::Store(StoreError::Backend(format!("cannot start the writer: {e}")));
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let (staged, flushes) = mpsc::channel::<Staged>();
        let waiter_store = store.clone();
        let waiter = std::thread::Builder::new()
            .name("gongwen-flush".into())
            .spawn(move || answer_when_durable(waiter_store.as_ref(), &flushes))
            .map_err(spawn_error)?;
        let writer = std::thread::Builder::new()
            .name("gongwen-writer".into())
            .spawn(move || run(store.as_ref(), &jobs, &staged))
            .map_err(spawn_error)?;
        Ok(Writer { queue: Some(queue), threads: vec![writer, waiter] })
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
        // Closing the queue ends the writer, whose end closes the waiter's queue: the writer is joined first.
        self.queue = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn run(store: &dyn Store, jobs: &mpsc::Receiver<Box<dyn Job>>, staged: &mpsc::Sender<Staged>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let ticket = store.stage_many(group.len(), &mut |i, tx| match group.get_mut(i) {
            Some(job) => job.run(tx),
            None => Outcome::Abort,
        });
        if let Err((group, ticket)) = staged.send((group, ticket)).map_err(|e| e.0) {
            // The waiter is gone (it cannot be, while this thread runs): answer after the flush here instead.
            let durable = durable(store, ticket);
            for job in group {
                job.finish(&durable);
            }
        }
    }
}

/// Waits for `ticket`'s flush. A flush that panics in this thread is a failed flush (the store marks it so), not
/// the end of the thread that answers every later group.
fn durable(store: &dyn Store, ticket: Result<Ticket, StoreError>) -> Result<(), StoreError> {
    ticket.and_then(|t| {
        catch_unwind(AssertUnwindSafe(|| store.wait_durable(t)))
            .unwrap_or_else(|_| Err(StoreError::Failed("a flush panicked".into())))
    })
}

fn answer_when_durable(store: &dyn Store, flushes: &mpsc::Receiver<Staged>) {
    while let Ok((group, ticket)) = flushes.recv() {
        let durable = durable(store, ticket);
        for job in group {
            job.finish(&durable);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn put(key: &'static [u8]) -> impl FnOnce(&mut dyn Tx) -> Result<(), AppError> + Send + 'static {
        move |tx| {
            tx.put(key, b"v");
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_flush_that_panics_fails_its_writes_and_every_later_one_and_says_so_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SledStore::open(dir.path(), 8 << 20).expect("store"));
        let mut told = store.failure();
        let writer = Writer::start(store.clone()).expect("writer");
        writer.write(put(b"before")).await.expect("a write before the fault");
        assert!(told.borrow_and_update().is_none());

        store.panic_next_flush();
        let refused = writer.write(put(b"lost")).await.expect_err("its flush panicked");
        assert!(matches!(&refused, AppError::Store(StoreError::Failed(m)) if m == "a flush panicked"), "{refused:?}");
        assert_eq!(told.borrow_and_update().as_deref(), Some("a flush panicked"), "the store says so before the reply");

        // The thread that led the panicking flush still answers: a refusal that would have been final is the
        // store's failure now, and so is a write; the failure is announced once.
        let precondition = writer
            .write(|_tx| -> Result<(), AppError> { Err(AppError::Precondition("not in this state".into())) })
            .await
            .expect_err("refused");
        assert!(matches!(precondition, AppError::Store(StoreError::Failed(_))), "{precondition:?}");
        let later = writer.write(put(b"after")).await.expect_err("nothing is acknowledged after the failure");
        assert!(matches!(later, AppError::Store(StoreError::Failed(_))), "{later:?}");
        assert!(!told.has_changed().expect("the store is open"), "told once");
    }
}
