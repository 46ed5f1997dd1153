//! What traces and matrices show of each unit, kept in one array sorted by unit id. A walk over a 200,000-delivery
//! tree looks up every recipient; in a hash map each lookup was a few cache misses at random places, a good part
//! of the walk (a profile put the map's probe loop among its hottest instructions). A document's deliveries are
//! stored in recipient order, so a walk's lookups within one document climb through the array: each search
//! starts where the one before it ended and usually finds its unit a step or two on, in memory already read.
use crate::domain::model::{Level, Unit};

/// A unit's name, region and level, as traces and matrices show them.
#[derive(Debug, Clone)]
pub struct UnitBrief {
    pub full_name: String,
    pub region: String,
    pub level: Level,
}

/// Every unit's brief, by id.
#[derive(Debug, Default)]
pub struct Briefs {
    sorted: Vec<(Box<str>, UnitBrief)>,
}

impl Briefs {
    /// The briefs of `units`, in any order.
    pub fn new<'a>(units: impl IntoIterator<Item = &'a Unit>) -> Briefs {
        let mut sorted: Vec<(Box<str>, UnitBrief)> = units
            .into_iter()
            .map(|u| {
                let brief = UnitBrief { full_name: u.full_name.clone(), region: u.region.clone(), level: u.level };
                (u.id.as_str().into(), brief)
            })
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        Briefs { sorted }
    }

    /// The brief of `unit_id`.
    pub fn get(&self, unit_id: &str) -> Option<&UnitBrief> {
        self.at(self.sorted.binary_search_by(|(id, _)| id.as_ref().cmp(unit_id)).ok()?)
    }

    /// The brief of `unit_id`, searched from `hint` (where the last search ended) onwards; `hint` moves to where
    /// this one ends. Any hint gives the right answer; a hint just before the unit gives it fastest.
    pub fn find_from(&self, unit_id: &str, hint: &mut usize) -> Option<&UnitBrief> {
        let ahead = match self.sorted.get(*hint) {
            Some((id, _)) if id.as_ref() == unit_id => return self.at(*hint),
            Some((id, _)) => id.as_ref() < unit_id,
            None => false,
        };
        if !ahead {
            // Not ahead of the hint: a new document's lookups start again from the beginning.
            return match self.sorted.binary_search_by(|(id, _)| id.as_ref().cmp(unit_id)) {
                Ok(i) => {
                    *hint = i;
                    self.at(i)
                }
                Err(i) => {
                    *hint = i;
                    None
                }
            };
        }
        // Gallop: the unit is after the hint, usually just after it.
        let mut low = *hint + 1;
        let mut step = 1;
        while let Some((id, _)) = self.sorted.get(low + step - 1) {
            if id.as_ref() >= unit_id {
                break;
            }
            low += step;
            step *= 2;
        }
        let high = (low + step).min(self.sorted.len());
        let found = self.sorted[low..high].binary_search_by(|(id, _)| id.as_ref().cmp(unit_id));
        match found {
            Ok(i) => {
                *hint = low + i;
                self.at(low + i)
            }
            Err(i) => {
                *hint = low + i;
                None
            }
        }
    }

    fn at(&self, i: usize) -> Option<&UnitBrief> {
        self.sorted.get(i).map(|(_, brief)| brief)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::UnitKind;

    fn unit(id: &str) -> Unit {
        Unit {
            id: id.into(),
            full_name: format!("name of {id}"),
            region: "370000".into(),
            level: Level::Province,
            short_name: id.into(),
            kind: UnitKind::FinanceBureau,
            tags: vec![],
            prefixes: vec![],
            keys: vec![],
        }
    }

    fn briefs(ids: &[&str]) -> Briefs {
        Briefs::new(&ids.iter().map(|id| unit(id)).collect::<Vec<_>>())
    }

    #[test]
    fn finds_every_unit_whatever_the_hint() {
        let ids: Vec<String> = (0..200).map(|i| format!("u{:03}", i * 2)).collect();
        let b = briefs(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        for start in [0, 1, 57, 199, 200, 10_000] {
            for (i, id) in ids.iter().enumerate() {
                let mut hint = start;
                let found = b.find_from(id, &mut hint).map(|u| u.full_name.clone());
                assert_eq!(found, Some(format!("name of {id}")), "{id} from {start}");
                assert_eq!(hint, i);
                assert_eq!(b.get(id).map(|u| u.full_name.as_str()), Some(format!("name of {id}").as_str()));
            }
            // Ids between, before and after the units are not found, from any hint.
            for missing in ["u001", "u199", "a", "z", ""] {
                let mut hint = start;
                assert!(b.find_from(missing, &mut hint).is_none(), "{missing} from {start}");
                assert!(b.get(missing).is_none());
            }
        }
    }

    #[test]
    fn climbing_lookups_move_the_hint_along() {
        let b = briefs(&["a", "c", "b", "e", "d"]);
        let mut hint = 0;
        let names: Vec<Option<String>> = ["a", "b", "d", "e", "c"]
            .iter()
            .map(|id| b.find_from(id, &mut hint).map(|u| u.full_name.clone()))
            .collect();
        assert!(names.iter().all(Option::is_some), "{names:?}");
        assert_eq!(hint, 2, "the last lookup, c, went back to where c is");
        assert!(briefs(&[]).find_from("a", &mut 0).is_none());
    }
}
