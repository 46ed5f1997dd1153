//! Who may change a unit's seal keys besides the operator: its parent unit, the office one level up that
//! supervises it (淄博市财政局 for 淄博市博山区财政局, 山东省财政厅 for 淄博市财政局).
use super::model::{Registry, Unit, UnitKind};

/// Why a unit has no parent unit, so only the operator may change its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoParent {
    /// No unit of the supervising kind ranks above it in its own region or the parent region (a province's
    /// department, a unit whose superior is not registered).
    None,
    /// Several units qualify equally (a city department: every provincial department is a candidate), and
    /// guessing would hand one office the keys of another's subordinate.
    Ambiguous(Vec<String>),
}

/// The kind of office that supervises one of `kind`: a 财政所 answers to the county 财政局; every other kind to the
/// same kind one level up (财政局 to 财政局/财政厅, 审计局 to 审计局/审计厅).
pub fn supervising_kind(kind: UnitKind) -> UnitKind {
    match kind {
        UnitKind::FinanceOffice => UnitKind::FinanceBureau,
        other => other,
    }
}

/// The parent unit of `unit`: among the units of the supervising kind that rank strictly above it (a smaller
/// level), those in its own region, or if there are none there, those in the parent region; of these, the ones
/// nearest in rank. Exactly one must remain, or there is no parent.
///
/// Looking at the unit's own region first is what makes a functional-zone bureau (淄博高新区财政局, county rank
/// in the city's region 370300) answer to 淄博市财政局, and a development-zone bureau ranked as a township inside
/// 博山区 answer to 博山区财政局. No further regions are searched: skipping a level would let a province change a
/// township's keys behind the county's back (the same 越级 rule as for documents).
pub fn parent_unit<'a>(registry: &'a Registry, unit: &Unit) -> Result<&'a Unit, NoParent> {
    let kind = supervising_kind(unit.kind);
    let above = |region: &str| -> Vec<&'a Unit> {
        registry
            .units
            .values()
            .filter(|p| p.id != unit.id && p.region == region && p.kind == kind && p.level < unit.level)
            .collect()
    };
    let mut candidates = above(&unit.region);
    if candidates.is_empty()
        && let Some(parent_region) = registry.regions.get(&unit.region).and_then(|r| r.parent.as_deref())
    {
        candidates = above(parent_region);
    }
    let Some(nearest) = candidates.iter().map(|p| p.level).max() else {
        return Err(NoParent::None);
    };
    candidates.retain(|p| p.level == nearest);
    match candidates.as_slice() {
        [one] => Ok(one),
        many => Err(NoParent::Ambiguous(many.iter().map(|p| p.id.clone()).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Level, Region};

    fn region(reg: &mut Registry, code: &str, parent: Option<&str>, level: Level) {
        let r = Region { code: code.into(), name: code.into(), parent: parent.map(Into::into), level };
        reg.regions.insert(code.into(), r);
    }

    fn unit(reg: &mut Registry, id: &str, region: &str, level: Level, kind: UnitKind) {
        let u = Unit {
            id: id.into(),
            full_name: id.into(),
            short_name: String::new(),
            region: region.into(),
            level,
            kind,
            tags: vec![],
            prefixes: vec![],
            keys: vec![],
        };
        reg.units.insert(id.into(), u);
    }

    /// A slice of registry/shandong.toml: the province, Zibo, Boshan and one of its townships.
    fn shandong() -> Registry {
        use Level::*;
        use UnitKind::*;
        let mut r = Registry::default();
        region(&mut r, "370000", None, Province);
        region(&mut r, "370300", Some("370000"), City);
        region(&mut r, "370304", Some("370300"), County);
        region(&mut r, "370304001", Some("370304"), Township);
        region(&mut r, "370700", Some("370000"), City);
        unit(&mut r, "370000.czt", "370000", Province, FinanceBureau);
        unit(&mut r, "370000.jyt", "370000", Province, Department);
        unit(&mut r, "370000.mzt", "370000", Province, Department);
        unit(&mut r, "370000.sjt", "370000", Province, AuditBureau);
        unit(&mut r, "370300.czj", "370300", City, FinanceBureau);
        unit(&mut r, "370300.gxq-czj", "370300", County, FinanceBureau);
        unit(&mut r, "370300.jyj", "370300", City, Department);
        unit(&mut r, "370300.sjj", "370300", City, AuditBureau);
        unit(&mut r, "370304.czj", "370304", County, FinanceBureau);
        unit(&mut r, "370304.kfq-czsjj", "370304", Township, FinanceBureau);
        unit(&mut r, "370304.sjj", "370304", County, AuditBureau);
        unit(&mut r, "370304001.czs", "370304001", Township, FinanceOffice);
        unit(&mut r, "370700.czj", "370700", City, FinanceBureau);
        r
    }

    fn parent(reg: &Registry, id: &str) -> Result<String, NoParent> {
        parent_unit(reg, &reg.units[id]).map(|p| p.id.clone())
    }

    #[test]
    fn the_parent_is_the_supervising_office_one_level_up() {
        let r = shandong();
        assert_eq!(parent(&r, "370304.czj"), Ok("370300.czj".into()));
        assert_eq!(parent(&r, "370300.czj"), Ok("370000.czt".into()));
        assert_eq!(parent(&r, "370700.czj"), Ok("370000.czt".into()));
        assert_eq!(parent(&r, "370304.sjj"), Ok("370300.sjj".into()));
        assert_eq!(parent(&r, "370300.sjj"), Ok("370000.sjt".into()));
        // A 财政所 answers to the district's 财政局.
        assert_eq!(parent(&r, "370304001.czs"), Ok("370304.czj".into()));
    }

    #[test]
    fn zone_bureaus_answer_to_the_bureau_of_their_own_region() {
        let r = shandong();
        assert_eq!(parent(&r, "370300.gxq-czj"), Ok("370300.czj".into()));
        assert_eq!(parent(&r, "370304.kfq-czsjj"), Ok("370304.czj".into()));
    }

    #[test]
    fn roots_and_ambiguous_units_have_no_parent() {
        let mut r = shandong();
        assert_eq!(parent(&r, "370000.czt"), Err(NoParent::None));
        assert_eq!(parent(&r, "370000.jyt"), Err(NoParent::None));
        assert_eq!(parent(&r, "370300.jyj"), Err(NoParent::Ambiguous(vec!["370000.jyt".into(), "370000.mzt".into()])));
        // Without Boshan's bureau a township office has no parent: the city is two levels up, never asked.
        r.units.remove("370304.czj");
        assert_eq!(parent(&r, "370304001.czs"), Err(NoParent::None));
    }

    #[test]
    fn the_nearest_rank_wins_and_a_tie_is_ambiguous() {
        let mut r = shandong();
        // A township-rank unit in Boshan's region answers to the county-rank bureau beside it.
        unit(&mut r, "370304.x", "370304", Level::Township, UnitKind::AuditBureau);
        assert_eq!(parent(&r, "370304.x"), Ok("370304.sjj".into()));
        unit(&mut r, "370304.sjj2", "370304", Level::County, UnitKind::AuditBureau);
        assert!(matches!(parent(&r, "370304.x"), Err(NoParent::Ambiguous(v)) if v.len() == 2));
        // Equal rank is not above: a county unit in the city's region does not supervise another.
        assert_eq!(parent(&r, "370304.sjj2"), Ok("370300.sjj".into()));
    }
}
