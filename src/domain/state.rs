//! The delivery state machine of domain.md §4.
use chrono::{DateTime, Days, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::DomainError;

/// Delivery state. Overdue is not a state: see [`is_overdue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Acknowledged,
    Handling,
    Reported,
    Forwarded,
    Completed,
    Returned,
}

/// Something a recipient (or, for Remind, a unit above it) does to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Acknowledge,
    Return,
    StartHandling,
    Report,
    Forward,
    Complete,
    Remind,
}

/// The state after `action`, or why it does not fit.
pub fn transition(state: DeliveryState, action: Action) -> Result<DeliveryState, DomainError> {
    use Action as A;
    use DeliveryState as S;
    let next = match (action, state) {
        (A::Acknowledge, S::Pending) => S::Acknowledged,
        // Returning is refusing a misdelivery, which is only possible before signing for it.
        (A::Return, S::Pending) => S::Returned,
        (A::StartHandling, S::Acknowledged) => S::Handling,
        // Several reports and several forwards (to different recipients) are normal.
        (A::Report, S::Acknowledged | S::Handling | S::Reported | S::Forwarded) => S::Reported,
        (A::Forward, S::Acknowledged | S::Handling | S::Reported | S::Forwarded) => S::Forwarded,
        (A::Complete, S::Handling | S::Reported | S::Forwarded) => S::Completed,
        (A::Remind, s) if !matches!(s, S::Completed | S::Returned) => s,
        _ => {
            return Err(DomainError::BadTransition { state: state.name().into(), action: action.name().into() });
        }
    };
    Ok(next)
}

/// The end of a deadline day is midnight in China Standard Time, where the documents are issued.
fn deadline_end(deadline: NaiveDate) -> Option<DateTime<Utc>> {
    let cst = FixedOffset::east_opt(8 * 3600)?;
    let next_day = deadline.checked_add_days(Days::new(1))?;
    next_day.and_time(NaiveTime::MIN).and_local_timezone(cst).single().map(|t| t.with_timezone(&Utc))
}

/// True when the deadline (end of that day, China Standard Time) has passed and the delivery is not completed.
/// Returned deliveries are refused, not late.
pub fn is_overdue(deadline: Option<NaiveDate>, state: DeliveryState, now: DateTime<Utc>) -> bool {
    if matches!(state, DeliveryState::Completed | DeliveryState::Returned) {
        return false;
    }
    deadline.and_then(deadline_end).is_some_and(|end| now >= end)
}

/// Whole days past the end of the deadline day, counting the day it turned overdue as 1; `None` when not overdue.
pub fn days_late(deadline: Option<NaiveDate>, state: DeliveryState, now: DateTime<Utc>) -> Option<u32> {
    if !is_overdue(deadline, state, now) {
        return None;
    }
    let end = deadline.and_then(deadline_end)?;
    u32::try_from((now - end).num_days() + 1).ok()
}

impl DeliveryState {
    /// Acknowledged or further along, and not returned.
    pub fn is_acknowledged(self) -> bool {
        !matches!(self, DeliveryState::Pending | DeliveryState::Returned)
    }

    /// The recipient acted: handling, reported, forwarded or completed.
    pub fn is_acted(self) -> bool {
        matches!(
            self,
            DeliveryState::Handling | DeliveryState::Reported | DeliveryState::Forwarded | DeliveryState::Completed
        )
    }

    /// English and Chinese name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending (待签收)",
            DeliveryState::Acknowledged => "acknowledged (已签收)",
            DeliveryState::Handling => "being handled (办理中)",
            DeliveryState::Reported => "reported (已报送)",
            DeliveryState::Forwarded => "forwarded (已转发)",
            DeliveryState::Completed => "completed (已办结)",
            DeliveryState::Returned => "returned (已退回)",
        }
    }
}

impl Action {
    /// English and Chinese name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge (签收)",
            Action::Return => "return (退回)",
            Action::StartHandling => "start handling (承办)",
            Action::Report => "report on (报送)",
            Action::Forward => "forward (转发)",
            Action::Complete => "complete (办结)",
            Action::Remind => "remind about (催办)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use DeliveryState as S;

    const STATES: [S; 7] =
        [S::Pending, S::Acknowledged, S::Handling, S::Reported, S::Forwarded, S::Completed, S::Returned];

    /// The whole table of domain.md §4: `Some(next)` where allowed.
    fn expected(state: S, action: Action) -> Option<S> {
        match action {
            Action::Acknowledge => (state == S::Pending).then_some(S::Acknowledged),
            Action::Return => (state == S::Pending).then_some(S::Returned),
            Action::StartHandling => (state == S::Acknowledged).then_some(S::Handling),
            Action::Report => {
                matches!(state, S::Acknowledged | S::Handling | S::Reported | S::Forwarded).then_some(S::Reported)
            }
            Action::Forward => {
                matches!(state, S::Acknowledged | S::Handling | S::Reported | S::Forwarded).then_some(S::Forwarded)
            }
            Action::Complete => matches!(state, S::Handling | S::Reported | S::Forwarded).then_some(S::Completed),
            Action::Remind => (!matches!(state, S::Completed | S::Returned)).then_some(state),
        }
    }

    #[test]
    fn every_state_and_action_pair() {
        let actions = [
            Action::Acknowledge,
            Action::Return,
            Action::StartHandling,
            Action::Report,
            Action::Forward,
            Action::Complete,
            Action::Remind,
        ];
        let mut allowed = 0;
        for s in STATES {
            for a in actions {
                match (transition(s, a), expected(s, a)) {
                    (Ok(got), Some(want)) => {
                        assert_eq!(got, want, "{s:?} + {a:?}");
                        allowed += 1;
                    }
                    (Err(DomainError::BadTransition { state, action }), None) => {
                        assert_eq!(state, s.name());
                        assert_eq!(action, a.name());
                    }
                    (got, want) => panic!("{s:?} + {a:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        // 1 + 1 + 1 + 4 + 4 + 3 + 5 allowed pairs of 49.
        assert_eq!(allowed, 19);
    }

    #[test]
    fn acknowledged_and_acted() {
        assert!(!S::Pending.is_acknowledged() && !S::Returned.is_acknowledged());
        assert!(S::Acknowledged.is_acknowledged() && S::Completed.is_acknowledged());
        assert!(!S::Acknowledged.is_acted() && !S::Pending.is_acted() && !S::Returned.is_acted());
        assert!(S::Handling.is_acted() && S::Reported.is_acted() && S::Forwarded.is_acted() && S::Completed.is_acted());
    }

    #[test]
    fn overdue_turns_at_midnight_china_time() {
        let due = NaiveDate::from_ymd_opt(2022, 11, 30);
        // 2022-11-30 23:59:59 +08:00 is 15:59:59 UTC: still on time.
        let before = Utc.with_ymd_and_hms(2022, 11, 30, 15, 59, 59).single().unwrap_or_default();
        let at = Utc.with_ymd_and_hms(2022, 11, 30, 16, 0, 0).single().unwrap_or_default();
        assert!(!is_overdue(due, S::Pending, before));
        assert!(is_overdue(due, S::Pending, at));
        assert!(is_overdue(due, S::Forwarded, at));
        assert!(!is_overdue(due, S::Completed, at));
        assert!(!is_overdue(due, S::Returned, at));
        assert!(!is_overdue(None, S::Pending, at));
        assert_eq!(days_late(due, S::Pending, before), None);
        assert_eq!(days_late(due, S::Pending, at), Some(1));
        let a_day_later = Utc.with_ymd_and_hms(2022, 12, 1, 16, 0, 0).single().unwrap_or_default();
        assert_eq!(days_late(due, S::Pending, a_day_later), Some(2));
        assert_eq!(days_late(due, S::Completed, a_day_later), None);
    }
}
