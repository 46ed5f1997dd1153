//! Counts of the statements sent on `Act` calls, by payload type and status code: the requests metric counts an
//! `Act` call once, whatever it carried.
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Statements by (payload type, gRPC status code). The types are the six delivery statements and "other", the
/// codes gRPC's seventeen: the map stays small whatever clients send.
#[derive(Default)]
pub struct Tally(Mutex<BTreeMap<(&'static str, i32), u64>>);

impl Tally {
    /// Counts one statement.
    pub fn add(&self, kind: &'static str, code: i32) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()).entry((kind, code)).or_default() += 1;
    }

    /// Every count so far.
    pub fn counts(&self) -> Vec<((&'static str, i32), u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_by_type_and_code() {
        let t = Tally::default();
        t.add("gongwen.v1.Acknowledge", 0);
        t.add("gongwen.v1.Acknowledge", 0);
        t.add("gongwen.v1.Acknowledge", 9);
        t.add("other", 3);
        assert_eq!(
            t.counts(),
            vec![(("gongwen.v1.Acknowledge", 0), 2), (("gongwen.v1.Acknowledge", 9), 1), (("other", 3), 1)]
        );
    }
}
