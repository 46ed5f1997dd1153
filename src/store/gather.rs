//! How long a flush waits for company: the gathering half of group commit.
//!
//! Flushing as soon as anything is pending splits a steady crowd of clients into a large group and a lone
//! straggler, turn by turn: the replies to one flush go out together, the first client to answer is alone in the
//! next flush, and the rest arrive while it runs. Measured at 64 clients, a third of all flushes carried one to
//! three transactions, each paying a whole fsync and sled's I/O hand-off. So a flush first waits, briefly, until
//! about half as many transactions as the larger of the last two groups are pending.
//!
//! Only after a group of [`CROWD`] or more. Fewer clients do not keep two cores busy, and for them a flush at once
//! costs less than a wait: with the wait after groups of 2 or more, 4 clients made 15 % fewer acknowledgments a
//! second, and after groups of 8 or more, 16 clients were slower in 4 of 6 alternated pairs. At 64 clients the
//! wait gave 12 % more at the median of 13 pairs. A lone client waits only on the two flushes right after a
//! crowd's group, each wait ending at [`GATHER_WAIT`]; then the groups it is measured against are small.

/// The longest a flush waits for its group to fill: the most a request's latency grows by it.
pub const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// The smallest group after which the next flush waits for company.
pub(super) const CROWD: u64 = 32;

/// The sizes of the last two flushed groups, in transactions.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Recent([u64; 2]);

impl Recent {
    /// Notes a flushed group's size.
    pub(super) fn record(&mut self, group: u64) {
        self.0 = [self.0[1], group];
    }

    /// How many pending transactions the next flush waits for; 1 or less means it does not wait.
    pub(super) fn want(&self) -> u64 {
        let larger = self.0[0].max(self.0[1]);
        if larger >= CROWD { larger / 2 } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(groups: &[u64]) -> u64 {
        let mut recent = Recent::default();
        for &g in groups {
            recent.record(g);
        }
        recent.want()
    }

    #[test]
    fn a_lone_client_or_a_few_never_wait() {
        assert!(after(&[]) <= 1);
        assert!(after(&[1, 1, 1]) <= 1);
        assert!(after(&[2, 3]) <= 1);
        assert_eq!(after(&[4, CROWD - 1]), 0);
        assert_eq!(after(&[CROWD, 1]), CROWD / 2);
    }

    #[test]
    fn a_crowd_waits_for_half_its_larger_recent_group() {
        // The alternation the wait is there to end: a straggler after each full group.
        assert_eq!(after(&[64, 1]), 32);
        assert_eq!(after(&[1, 64]), 32);
        assert_eq!(after(&[40, 41]), 20);
    }

    #[test]
    fn a_thinned_crowd_stops_waiting_within_two_groups() {
        assert_eq!(after(&[64, 1, 1]), 0);
        assert_eq!(after(&[64, 64, 2, 2]), 0);
    }
}
