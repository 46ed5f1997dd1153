//! Walks of a tree's parts on all cores (see [`in_parallel_ordered`]).
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::AppError;
use crate::store::StoreError;

/// `f` over `items` on up to as many threads as there are cores (this one among them), results in item order.
pub(super) fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<R, AppError> + Sync,
) -> Result<Vec<R>, AppError> {
    let mut out = Vec::with_capacity(items.len());
    in_parallel_ordered(items, f, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// `f` over `items` on up to as many threads as there are cores (this one among them), each result handed to
/// `emit` in item order as soon as those before it are: a streamed trace sends each subtree while later ones are
/// still walked. Items are taken one at a time from a shared counter, so a few large subtrees spread as well as
/// many small ones. The first error, from `f` or from `emit`, stops the walk and is returned.
pub(super) fn in_parallel_ordered<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<R, AppError> + Sync,
    emit: impl FnMut(R) -> Result<(), AppError> + Send,
) -> Result<(), AppError> {
    let n = items.len();
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get()).clamp(1, 8).min(n);
    // A bug in one subtree's walk must answer this request with an error, not take the server down.
    let guarded = |item| {
        catch_unwind(AssertUnwindSafe(|| f(item)))
            .unwrap_or_else(|_| Err(AppError::Store(StoreError::Backend("a trace walk panicked".into()))))
    };
    if threads <= 1 {
        let mut emit = emit;
        return items.into_iter().try_for_each(|item| emit(guarded(item)?));
    }
    struct Out<R, E> {
        /// The next item to hand to `emit`.
        next: usize,
        /// Results that finished before an earlier item did.
        waiting: BTreeMap<usize, Result<R, AppError>>,
        emit: E,
        failed: Option<AppError>,
    }
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let out = Mutex::new(Out { next: 0, waiting: BTreeMap::new(), emit, failed: None });
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let work = || {
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else { break };
            let Some(item) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else { continue };
            let r = guarded(item);
            let mut guard = out.lock().unwrap_or_else(|p| p.into_inner());
            let o = &mut *guard;
            o.waiting.insert(i, r);
            // Once the walk failed, nothing more goes to `emit`: not what a thread was still walking then.
            while o.failed.is_none()
                && let Some(r) = o.waiting.remove(&o.next)
            {
                o.next += 1;
                if let Err(e) = r.and_then(|r| (o.emit)(r)) {
                    o.failed.get_or_insert(e);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // A thread that cannot be started leaves its share to the others.
            let _ = std::thread::Builder::new().name("gongwen-trace".into()).spawn_scoped(scope, work);
        }
        work();
    });
    let o = out.into_inner().unwrap_or_else(|p| p.into_inner());
    match (o.failed, o.next == n) {
        (Some(e), _) => Err(e),
        (None, true) => Ok(()),
        (None, false) => Err(AppError::Store(StoreError::Backend("a trace walk did not run".into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_walks_keep_item_order_and_report_a_failure() {
        let squares = in_parallel((0..100u64).collect(), |i| Ok(i * i));
        assert_eq!(squares.ok(), Some((0..100u64).map(|i| i * i).collect::<Vec<_>>()));
        let failed =
            in_parallel((0..10u64).collect(), |i| if i == 7 { Err(AppError::NotFound("seven".into())) } else { Ok(i) });
        assert!(matches!(failed, Err(AppError::NotFound(m)) if m == "seven"));
        let empty: Result<Vec<u8>, AppError> = in_parallel(vec![], Ok);
        assert_eq!(empty.ok(), Some(vec![]));
    }

    #[test]
    fn ordered_walks_emit_in_item_order_and_stop_at_the_first_error() {
        // Later items finish first (they sleep less), yet are emitted in order.
        let mut seen = vec![];
        let r = in_parallel_ordered(
            (0..20u64).collect(),
            |i| {
                std::thread::sleep(std::time::Duration::from_micros(200 * (20 - i)));
                Ok(i)
            },
            |i| {
                seen.push(i);
                Ok(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        // An emit that fails stops the walk: nothing after it is emitted, and its error comes back.
        let mut emitted = vec![];
        let r = in_parallel_ordered((0..50u64).collect(), Ok, |i| {
            if i == 5 {
                return Err(AppError::Cancelled);
            }
            emitted.push(i);
            Ok(())
        });
        assert!(matches!(r, Err(AppError::Cancelled)));
        assert_eq!(emitted, vec![0, 1, 2, 3, 4]);
        let failed =
            in_parallel_ordered((0..3u64).collect(), |i| if i == 1 { panic!("walk {i}") } else { Ok(i) }, |_| Ok(()));
        assert!(matches!(failed, Err(AppError::Store(StoreError::Backend(m))) if m.contains("panicked")));
    }

    #[test]
    fn nothing_is_emitted_after_a_walk_failed() {
        if std::thread::available_parallelism().map_or(1, |c| c.get()) < 2 {
            return;
        }
        // Item 1 is mid-walk on another thread when item 0 fails; it finishes after the failure was recorded.
        let started = AtomicBool::new(false);
        let mut emitted = vec![];
        let r = in_parallel_ordered(
            vec![0u64, 1],
            |i| {
                if i == 0 {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    while !started.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                        std::thread::yield_now();
                    }
                    return Err(AppError::NotFound("zero".into()));
                }
                started.store(true, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok(i)
            },
            |i| {
                emitted.push(i);
                Ok(())
            },
        );
        assert!(matches!(r, Err(AppError::NotFound(m)) if m == "zero"));
        assert_eq!(emitted, Vec::<u64>::new(), "item 1 was emitted after item 0 failed");
        // The same after an emit that failed: it is not called again.
        let calls = AtomicUsize::new(0);
        let started = AtomicBool::new(false);
        let r = in_parallel_ordered(
            vec![0u64, 1],
            |i| {
                if i == 0 {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    while !started.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                        std::thread::yield_now();
                    }
                } else {
                    started.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Ok(i)
            },
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AppError::Cancelled)
            },
        );
        assert!(matches!(r, Err(AppError::Cancelled)));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "emit was called again after it failed");
    }
}
