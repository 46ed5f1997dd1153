//! The delivery state machine of domain.md §4.
use chrono::{DateTime, NaiveDate, Utc};
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
    let _ = (state, action);
    unimplemented!("filled in by the domain work")
}

/// True when the deadline (end of that day, China Standard Time) has passed and the delivery is not completed.
pub fn is_overdue(deadline: Option<NaiveDate>, state: DeliveryState, now: DateTime<Utc>) -> bool {
    let _ = (deadline, state, now);
    unimplemented!("filled in by the domain work")
}

impl DeliveryState {
    /// Acknowledged or further along, and not returned.
    pub fn is_acknowledged(self) -> bool {
        unimplemented!("filled in by the domain work")
    }
    /// The recipient acted: handling, reported, forwarded or completed.
    pub fn is_acted(self) -> bool {
        unimplemented!("filled in by the domain work")
    }
}
