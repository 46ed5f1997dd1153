//! Request tokens are not replayable across a restart.
//!
//! A token's nonce is refused a second time, but used nonces live in memory only. So a server also refuses every
//! token dated before a *horizon* that bounds all the tokens any earlier process on the same data directory
//! accepted. Refusing only tokens dated before the process's start was not enough: a token from a client whose
//! clock runs ahead (within the accepted skew) stays dated after a restart, and so does one accepted in the very
//! second of a quick restart.
//!
//! The bound is kept in a file (`store::horizon_file`) and raised before a token beyond it is accepted:
//! - The shared bound covers everyone. It is raised [`LEASE`] past the server's clock, so under steady traffic
//!   one request in that time waits for a small fsync, and a server that crashed may refuse tokens dated up to
//!   twice `LEASE` after the crash (a token dated `LEASE` ahead raises it `LEASE` past that). `gongwen serve`
//!   waits that out before it listens.
//! - A caller whose clock runs more than `LEASE` ahead gets a bound of its own, so it cannot push the shared one
//!   into the future and lock everyone else out after a crash.
//! - A clean stop lowers the shared bound to just after the latest token accepted under it.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::AppError;
use crate::store::StoreError;
use crate::store::horizon_file::{Horizon, HorizonFile};

/// How far past the server's clock the shared bound is raised.
pub const LEASE: Duration = Duration::seconds(2);

/// What accepting a token dated `at` needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// Nothing: a durable bound already lies beyond it.
    Covered,
    /// The shared bound raised to this.
    Shared(DateTime<Utc>),
    /// The caller's own bound raised to this (its clock runs ahead of the server's).
    Own(DateTime<Utc>),
}

/// The rule, with no I/O: a token dated `at` is covered by a bound strictly after it.
pub fn cover(at: DateTime<Utc>, now: DateTime<Utc>, shared: DateTime<Utc>, own: Option<DateTime<Utc>>) -> Cover {
    if at < shared || own.is_some_and(|o| at < o) {
        Cover::Covered
    } else if at <= now + LEASE {
        Cover::Shared(at.max(now) + LEASE)
    } else {
        Cover::Own(at + LEASE)
    }
}

/// The horizon of one running app: the floors it refuses below, and the bounds it has made durable.
pub(super) struct Horizons {
    /// `None` for an app without a data directory of its own (fuzzing, embedding): nothing outlives it, so the
    /// start floor is all it needs.
    file: Option<HorizonFile>,
    /// Tokens dated before this are refused for everyone: the later of the start second and the saved bound.
    floor: DateTime<Utc>,
    /// Per-caller floors, from the saved own bounds.
    own_floors: HashMap<String, DateTime<Utc>>,
    state: Mutex<State>,
    /// One raise at a time; the others wait and then find themselves covered. Held until the save is done even
    /// when the request that raises is cancelled, so that a stale save cannot land over a later one.
    raising: Arc<tokio::sync::Mutex<()>>,
}

struct State {
    /// What the file says now.
    saved: Horizon,
    /// The latest token time accepted under the shared bound (what a clean stop may lower it to).
    latest_shared: Option<DateTime<Utc>>,
    /// The same per caller, for tokens accepted under their own bounds.
    latest_own: HashMap<String, Option<DateTime<Utc>>>,
}

impl Horizons {
    /// Horizons for an app that started at `started` (whole seconds), read from `file` if it has one.
    pub(super) fn load(file: Option<HorizonFile>, started: DateTime<Utc>) -> Result<Horizons, StoreError> {
        let saved = match &file {
            Some(f) => f.load()?.unwrap_or_default(),
            None => Horizon::default(),
        };
        let floor = saved.shared.map_or(started, |s| s.max(started));
        let own_floors = saved.own.iter().map(|(k, v)| (k.clone(), *v)).collect();
        Ok(Horizons {
            file,
            floor,
            own_floors,
            state: Mutex::new(State { saved, latest_shared: None, latest_own: HashMap::new() }),
            raising: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Tokens dated before this are refused for every caller.
    pub(super) fn floor(&self) -> DateTime<Utc> {
        self.floor
    }

    /// Refuses a token of `caller` dated `at` that a process before this one may have accepted.
    pub(super) fn check_floor(&self, caller: &str, at: DateTime<Utc>) -> Result<(), AppError> {
        let floor = self.own_floors.get(caller).map_or(self.floor, |o| self.floor.max(*o));
        if at < floor {
            return Err(AppError::Unauthenticated(format!(
                "the token is dated {at}, before {floor}: tokens from before a restart are refused, because their \
                 nonces are not remembered across it (this server started, or the one before it may have \
                 accepted tokens, up to {floor}); sign the request again, and check the client's clock if this \
                 persists"
            )));
        }
        Ok(())
    }

    /// Makes sure a durable bound lies beyond a token of `caller` dated `at` before it is accepted.
    pub(super) async fn admit(&self, caller: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), AppError> {
        let Some(file) = &self.file else { return Ok(()) };
        if self.covered(caller, at, now).is_none() {
            return Ok(());
        }
        let one = Arc::clone(&self.raising).lock_owned().await;
        let Some(next) = self.covered(caller, at, now) else { return Ok(()) };
        let file = file.clone();
        let saved = next.clone();
        // The guard goes with the save and comes back with it: dropped there if this request is cancelled.
        let (saved, _one) = tokio::task::spawn_blocking(move || (file.save(&saved), one)).await?;
        saved?;
        self.lock().saved = next;
        match self.covered(caller, at, now) {
            None => Ok(()),
            Some(_) => {
                Err(AppError::Store(StoreError::Backend("the token horizon did not move past the token".into())))
            }
        }
    }

    /// `None` when the token is covered (noting it), else the horizon to save first.
    fn covered(&self, caller: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Horizon> {
        let mut s = self.lock();
        let shared = s.saved.shared.unwrap_or(self.floor).max(self.floor);
        match cover(at, now, shared, s.saved.own.get(caller).copied()) {
            Cover::Covered => {
                let latest =
                    if at < shared { &mut s.latest_shared } else { s.latest_own.entry(caller.into()).or_default() };
                *latest = Some(latest.map_or(at, |l| l.max(at)));
                None
            }
            Cover::Shared(to) => Some(pruned(Horizon { shared: Some(to), ..s.saved.clone() })),
            Cover::Own(to) => {
                let mut next = s.saved.clone();
                next.own.insert(caller.to_owned(), to);
                Some(next)
            }
        }
    }

    /// On a clean stop, with no request left: lowers the shared bound to just after the latest token accepted
    /// under it, so the next start need not wait for the lease. Blocking.
    pub(super) fn close(&self) -> Result<(), StoreError> {
        let Some(file) = &self.file else { return Ok(()) };
        // A save of a cancelled request may still be running: then the bounds stay where they are.
        let Ok(_one) = self.raising.try_lock() else { return Ok(()) };
        let s = self.lock();
        let just_after = |latest: DateTime<Utc>| latest + Duration::nanoseconds(1);
        let mut exact = s.saved.clone();
        if let Some(latest) = s.latest_shared {
            exact.shared = Some(just_after(latest).max(self.floor));
        }
        // Every caller with an own bound, now, at the start or pruned since: lowering the shared bound must not
        // uncover what a pruned own bound covered (pruning below drops those the lowered shared bound covers).
        let callers: BTreeSet<&String> =
            s.saved.own.keys().chain(s.latest_own.keys()).chain(self.own_floors.keys()).collect();
        for caller in callers {
            let floor = self.own_floors.get(caller).map_or(self.floor, |f| self.floor.max(*f));
            let latest = s.latest_own.get(caller).copied().flatten().map(just_after);
            match (exact.own.get_mut(caller), latest) {
                (Some(bound), Some(latest)) => *bound = latest.max(floor),
                (Some(_), None) => {}
                (None, latest) => {
                    exact.own.insert(caller.clone(), latest.map_or(floor, |l| l.max(floor)));
                }
            }
        }
        let exact = pruned(exact);
        if exact == s.saved {
            return Ok(());
        }
        file.save(&exact)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drops the own bounds the shared one has passed: they no longer refuse anything it does not.
fn pruned(mut h: Horizon) -> Horizon {
    if let Some(shared) = h.shared {
        h.own.retain(|_, own| *own > shared);
    }
    h
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 5, 0, 0).single().unwrap_or_default() + Duration::seconds(secs)
    }

    #[test]
    fn a_token_needs_a_bound_strictly_after_it() {
        assert_eq!(cover(t(9), t(10), t(12), None), Cover::Covered);
        assert_eq!(cover(t(12), t(10), t(12), None), Cover::Shared(t(14)));
        assert_eq!(cover(t(11), t(11), t(10), None), Cover::Shared(t(13)));
        // A lagging client's token is raised from the server's clock, not from its own.
        assert_eq!(cover(t(5), t(11), t(5), None), Cover::Shared(t(13)));
        assert_eq!(cover(t(13), t(11), t(12), None), Cover::Shared(t(15)));
    }

    #[test]
    fn a_client_far_ahead_gets_its_own_bound() {
        assert_eq!(cover(t(100), t(10), t(12), None), Cover::Own(t(102)));
        assert_eq!(cover(t(101), t(10), t(12), Some(t(102))), Cover::Covered);
        assert_eq!(cover(t(102), t(10), t(12), Some(t(102))), Cover::Own(t(104)));
    }

    #[tokio::test]
    async fn what_one_process_accepted_the_next_refuses() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = || Some(HorizonFile::in_dir(dir.path()));
        let now = Utc::now();
        let started = now - Duration::seconds(1);
        let h = Horizons::load(file(), started).unwrap_or_else(|e| panic!("{e}"));
        for (who, at) in [("a", now), ("b", now + Duration::seconds(200))] {
            assert!(h.check_floor(who, at).is_ok());
            assert!(h.admit(who, at, now).await.is_ok());
        }
        // A crash: the next process refuses both, and only them.
        let next = Horizons::load(file(), started).unwrap_or_else(|e| panic!("{e}"));
        assert!(next.check_floor("a", now).is_err());
        assert!(next.check_floor("b", now + Duration::seconds(200)).is_err());
        assert!(next.check_floor("a", now + LEASE).is_ok());
        assert!(next.check_floor("a", now + Duration::seconds(100)).is_ok(), "b's clock does not hold a back");
        // A clean stop lowers the shared bound to just after the latest token under it.
        assert!(next.admit("a", now + LEASE, now).await.is_ok());
        let b_later = now + Duration::seconds(203);
        assert!(next.check_floor("b", b_later).is_ok());
        assert!(next.admit("b", b_later, now).await.is_ok());
        assert!(next.close().is_ok());
        let after = Horizons::load(file(), started).unwrap_or_else(|e| panic!("{e}"));
        assert!(after.check_floor("a", now + LEASE).is_err());
        assert!(after.check_floor("a", now + LEASE + Duration::milliseconds(1)).is_ok());
        assert!(after.check_floor("b", b_later).is_err());
        assert!(after.check_floor("b", b_later + Duration::milliseconds(1)).is_ok());
        assert!(after.check_floor("c", now + LEASE + Duration::milliseconds(1)).is_ok());
    }

    #[tokio::test]
    async fn without_a_file_only_the_start_counts() {
        let h = Horizons::load(None, t(0)).unwrap_or_else(|e| panic!("{e}"));
        assert!(h.check_floor("a", t(-1)).is_err());
        assert!(h.check_floor("a", t(0)).is_ok());
        assert!(h.admit("a", t(500), t(0)).await.is_ok());
        assert!(h.close().is_ok());
    }

    fn ms(ms: i64) -> Duration {
        Duration::milliseconds(ms)
    }

    #[tokio::test]
    async fn a_clean_stop_keeps_what_a_pruned_own_bound_covered() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = || Some(HorizonFile::in_dir(dir.path()));
        let h = Horizons::load(file(), t(0)).unwrap_or_else(|e| panic!("{e}"));
        // A caller 2.4 s ahead gets its own bound (t(11.4)); then a client lagging by 8.5 s raises the shared
        // bound past it (t(11.5)), which prunes it, while the latest token under the shared bound is t(1).
        let x = t(9) + ms(400);
        assert!(h.admit("x", x, t(7)).await.is_ok());
        assert!(h.admit("lagging", t(1), t(9) + ms(500)).await.is_ok());
        assert!(h.close().is_ok());
        // A restart in the same second as x: x is not before the start second.
        let next = Horizons::load(file(), t(9)).unwrap_or_else(|e| panic!("{e}"));
        assert!(next.check_floor("x", x).is_err(), "x's token, accepted before the clean stop, is accepted again");
    }

    #[tokio::test]
    async fn a_clean_stop_keeps_a_saved_own_bound_that_this_run_pruned() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = || Some(HorizonFile::in_dir(dir.path()));
        let first = Horizons::load(file(), t(0)).unwrap_or_else(|e| panic!("{e}"));
        let x = t(9) + ms(400);
        assert!(first.admit("x", x, t(7)).await.is_ok());
        // A crash, a start at t(8), and a lagging client's token prunes x's saved bound before a clean stop.
        let second = Horizons::load(file(), t(8)).unwrap_or_else(|e| panic!("{e}"));
        assert!(second.check_floor("x", x).is_err());
        assert!(second.admit("lagging", t(8) + ms(200), t(9) + ms(500)).await.is_ok());
        assert!(second.close().is_ok());
        let third = Horizons::load(file(), t(9)).unwrap_or_else(|e| panic!("{e}"));
        assert!(third.check_floor("x", x).is_err(), "x's token, accepted two runs ago, is accepted again");
    }

    #[test]
    fn a_cancelled_raise_holds_off_the_next_until_its_save_is_done() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let h = Horizons::load(Some(HorizonFile::in_dir(dir.path())), t(0)).unwrap_or_else(|e| panic!("{e}"));
            // The one blocking thread is busy, so the raise's save waits for it.
            let (release, busy) = std::sync::mpsc::channel::<()>();
            let blocker = tokio::task::spawn_blocking(move || busy.recv());
            {
                let mut raise = Box::pin(h.admit("a", t(1), t(1)));
                assert!(futures::poll!(raise.as_mut()).is_pending());
            }
            // The request was cancelled (its client went away): its save still runs, so another raise must not
            // start a save of its own that the stale one could overwrite.
            let free = h.raising.try_lock().is_ok();
            let _ = release.send(());
            let _ = blocker.await;
            assert!(!free, "a cancelled raise let the next one save while its own save was still to run");
        });
    }
}
