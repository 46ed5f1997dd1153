//! Delivery records read in place, for walks over whole trees: [`LeanDelivery`].
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use smallvec::SmallVec;

use crate::domain::instant::{parse_date, parse_utc_bytes};
use crate::domain::model::{Role, StepKind};
use crate::domain::state::DeliveryState;
use crate::store::StoreError;

/// A stored [`Delivery`](crate::domain::model::Delivery) read in place: strings borrowed, times left as their
/// text. Counting over a tree of hundreds of thousands of deliveries spends most of its time allocating strings and
/// parsing times it does not need. postcard records carry no field names, so this mirrors `Delivery` and `Step` field for field;
/// `tests::a_lean_delivery_reads_what_a_delivery_wrote` keeps them in step. The fields no reader looks at are read
/// and dropped ([`Skip`]), and the few steps a delivery has are kept inline, so reading one allocates nothing.
#[derive(Debug, Deserialize)]
pub(crate) struct LeanDelivery<'a> {
    /// Bytes: checked as text only by the reader that needs it, not by every trace.
    pub document_id: &'a [u8],
    pub recipient: &'a str,
    pub role: Role,
    pub state: DeliveryState,
    deadline: Option<&'a str>,
    #[serde(borrow)]
    pub steps: SmallVec<[LeanStep<'a>; 6]>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LeanStep<'a> {
    pub event_seq: u64,
    pub kind: StepKind,
    /// Text, read as bytes: checked by parsing, not first as UTF-8.
    pub at: &'a [u8],
    _actor: Skip<&'a [u8]>,
    _text: Skip<&'a [u8]>,
    _attachments: Skip<Vec<&'a [u8]>>,
    _forward: Skip<Option<(&'a [u8], &'a [u8])>>,
    /// Text, read as bytes: [`super::Snapshot::suspect_key`] checks it is text only for a revoked key.
    pub key_id: &'a [u8],
}

/// A field read as `T` and dropped: postcard cannot skip a field without knowing its type, and keeping what
/// nobody reads makes every step larger to copy.
struct Skip<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Skip<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|_| Skip(PhantomData))
    }
}

impl<T> std::fmt::Debug for Skip<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

impl LeanStep<'_> {
    pub fn at(&self) -> Result<DateTime<Utc>, StoreError> {
        parse_utc_bytes(self.at).ok_or_else(|| StoreError::Corrupt {
            key: "delivery step".into(),
            reason: format!("{:?} is not a time", String::from_utf8_lossy(self.at)),
        })
    }
}

impl LeanDelivery<'_> {
    pub fn deadline(&self) -> Option<NaiveDate> {
        self.deadline.and_then(parse_date)
    }

    pub fn has(&self, kind: StepKind) -> bool {
        self.steps.iter().any(|s| s.kind == kind)
    }

    /// The events about this delivery's document among its steps: all but a forward's, which belongs to the
    /// forwarding document (an imported forward also records the receipt it implies under that event).
    pub fn own_events(&self) -> impl Iterator<Item = u64> + '_ {
        let forwards: SmallVec<[u64; 2]> =
            self.steps.iter().filter(|s| s.kind == StepKind::Forwarded).map(|s| s.event_seq).collect();
        self.steps.iter().map(|s| s.event_seq).filter(move |seq| !forwards.contains(seq))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::app::schema;
    use crate::domain::model::{Delivery, Step};

    #[test]
    fn a_deliverys_own_events_leave_out_its_forwards_events() {
        let at = Utc.with_ymd_and_hms(2022, 12, 20, 9, 0, 0).single().unwrap_or_default();
        let step = |event_seq, kind| Step {
            event_seq,
            kind,
            at,
            actor: "370300.czj".into(),
            text: String::new(),
            attachments: vec![],
            forward: None,
            key_id: "k1".into(),
        };
        let delivery = |steps| Delivery {
            document_id: "d-1".into(),
            recipient: "370300.czj".into(),
            role: Role::Main,
            state: DeliveryState::Forwarded,
            deadline: None,
            steps,
        };
        let own = |d: &Delivery| -> Vec<u64> {
            let bytes = schema::encode(d).unwrap_or_default();
            let lean: Option<LeanDelivery> = schema::decode_borrowed(b"k", &bytes).ok();
            lean.map(|l| l.own_events().collect()).unwrap_or_default()
        };
        // Delivered with the issue (2), acknowledged (3), forwarded twice (4, 6), a report (7).
        let live = delivery(vec![
            step(2, StepKind::Delivered),
            step(3, StepKind::Acknowledged),
            step(4, StepKind::Forwarded),
            step(6, StepKind::Forwarded),
            step(7, StepKind::Reported),
        ]);
        assert_eq!(own(&live), [2, 3, 7]);
        // An imported forward records the receipt it implies under the forward's own event (5).
        let imported =
            delivery(vec![step(2, StepKind::Delivered), step(5, StepKind::Acknowledged), step(5, StepKind::Forwarded)]);
        assert_eq!(own(&imported), [2]);
    }

    #[test]
    fn a_lean_delivery_reads_what_a_delivery_wrote() {
        let at = Utc.with_ymd_and_hms(2022, 8, 16, 9, 30, 0).single().unwrap_or_default();
        let step = |kind, forward: Option<(String, String)>| Step {
            event_seq: 7,
            kind,
            at,
            actor: "370300.czj".into(),
            text: "收2022-118".into(),
            attachments: vec!["ab".repeat(32), "cd".repeat(32)],
            forward,
            key_id: "k1".into(),
        };
        let full = Delivery {
            document_id: "d-1".into(),
            recipient: "370304.czj".into(),
            role: Role::Main,
            state: DeliveryState::Forwarded,
            deadline: NaiveDate::from_ymd_opt(2022, 11, 30),
            steps: vec![
                step(StepKind::Delivered, None),
                step(StepKind::Acknowledged, None),
                step(StepKind::Forwarded, Some(("d-2".into(), "博财采〔2022〕19号".into()))),
            ],
        };
        let bytes = schema::encode(&full).unwrap_or_default();
        let lean: LeanDelivery = match schema::decode_borrowed(b"k", &bytes) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(lean.recipient, "370304.czj");
        assert_eq!((lean.role, lean.state, lean.deadline()), (Role::Main, DeliveryState::Forwarded, full.deadline));
        let kinds: Vec<StepKind> = lean.steps.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [StepKind::Delivered, StepKind::Acknowledged, StepKind::Forwarded]);
        assert!(lean.has(StepKind::Forwarded) && !lean.has(StepKind::Reported));
        // The last field of the last step reads right only if every skipped field before it was read whole.
        let last = lean.steps.last().map(|s| (s.at, s.key_id));
        assert_eq!(last, Some((&b"2022-08-16T09:30:00Z"[..], &b"k1"[..])));
        assert_eq!(lean.steps.last().map(|s| s.at().ok()), Some(Some(at)));
        // More steps than are kept inline (a much reminded delivery).
        let reminded = Delivery { steps: vec![step(StepKind::Reminded, None); 9], ..full.clone() };
        let bytes = schema::encode(&reminded).unwrap_or_default();
        let lean: Option<LeanDelivery> = schema::decode_borrowed(b"k", &bytes).ok();
        let read =
            lean.map(|l| (l.steps.len(), l.steps.iter().all(|s| s.key_id == b"k1" && s.kind == StepKind::Reminded)));
        assert_eq!(read, Some((9, true)));
        let undated = Delivery { deadline: None, steps: vec![], ..full };
        let bytes = schema::encode(&undated).unwrap_or_default();
        let lean: Option<LeanDelivery> = schema::decode_borrowed(b"k", &bytes).ok();
        assert_eq!(lean.map(|l| (l.deadline(), l.steps.len())), Some((None, 0)));
    }
}
