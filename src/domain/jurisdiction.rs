//! Region tree queries, recipient-group expansion and the jurisdiction rules (domain.md §1), over the in-memory
//! [`Registry`].
use std::collections::BTreeSet;

use super::DomainError;
use super::model::{Expansion, Group, GroupScope, Level, RecipientSpec, Registry, Unit};

/// Region trees are at most province → city → county → township deep; a longer parent walk means a cycle in bad
/// data, and must stop rather than loop.
const MAX_REGION_DEPTH: usize = 16;

fn label(u: &Unit) -> String {
    format!("{} ({})", u.full_name, u.id)
}

impl Registry {
    /// True when `code` is `ancestor` or lies below it.
    pub fn region_within(&self, code: &str, ancestor: &str) -> bool {
        let mut current = Some(code);
        for _ in 0..MAX_REGION_DEPTH {
            match current {
                Some(c) if c == ancestor => return true,
                Some(c) => current = self.regions.get(c).and_then(|r| r.parent.as_deref()),
                None => return false,
            }
        }
        false
    }

    fn parent_of(&self, code: &str) -> Option<&str> {
        self.regions.get(code).and_then(|r| r.parent.as_deref())
    }

    /// The units `group` reaches when `issuer` issues to it, in id order, the issuer itself excluded.
    pub fn expand_group<'a>(&'a self, group: &Group, issuer: &Unit) -> Vec<&'a Unit> {
        let home = issuer.region.as_str();
        self.units
            .values()
            .filter(|u| u.id != issuer.id)
            .filter(|u| match group.scope {
                GroupScope::SameRegion => u.region == home,
                GroupScope::ChildRegions => self.parent_of(&u.region) == Some(home),
                GroupScope::Subtree => u.region != home && self.region_within(&u.region, home),
            })
            .filter(|u| group.level.is_none_or(|l| u.level == l))
            .filter(|u| group.kinds.is_empty() || group.kinds.contains(&u.kind))
            .filter(|u| group.tags.iter().all(|t| u.tags.contains(t)))
            .collect()
    }

    fn expand_specs(&self, issuer: &Unit, specs: &[RecipientSpec]) -> Result<BTreeSet<String>, DomainError> {
        let mut out = BTreeSet::new();
        for spec in specs {
            match spec {
                RecipientSpec::Group(name) => {
                    let g = self.groups.get(name).ok_or_else(|| DomainError::UnknownGroup(name.clone()))?;
                    out.extend(self.expand_group(g, issuer).into_iter().map(|u| u.id.clone()));
                }
                RecipientSpec::Unit(id) => {
                    if !self.units.contains_key(id) {
                        return Err(DomainError::UnknownUnit(id.clone()));
                    }
                    out.insert(id.clone());
                }
            }
        }
        out.remove(&issuer.id);
        Ok(out)
    }

    /// Expands main and cc recipients as written, removes duplicates (main wins) and the issuer, and checks
    /// jurisdiction and the no-skipping-levels rule.
    pub fn resolve_recipients(
        &self,
        issuer: &Unit,
        main: &[RecipientSpec],
        cc: &[RecipientSpec],
    ) -> Result<Expansion, DomainError> {
        let main_ids = self.expand_specs(issuer, main)?;
        let cc_ids: BTreeSet<String> = self.expand_specs(issuer, cc)?.difference(&main_ids).cloned().collect();
        if main_ids.is_empty() {
            return Err(DomainError::NoRecipients);
        }
        let all: Vec<&Unit> = main_ids.iter().chain(&cc_ids).filter_map(|id| self.units.get(id)).collect();
        for u in &all {
            if !self.region_within(&u.region, &issuer.region) {
                return Err(DomainError::OutsideJurisdiction { recipient: label(u), issuer: label(issuer) });
            }
        }
        for id in &main_ids {
            let Some(r) = self.units.get(id) else { continue };
            self.check_no_skipped_level(issuer, r, &all)?;
        }
        Ok(Expansion { main: main_ids.into_iter().collect(), cc: cc_ids.into_iter().collect() })
    }

    /// 越级行文: for every level between issuer and recipient, some recipient of that level above the recipient
    /// (usually the skipped bureau, on cc) must be informed.
    fn check_no_skipped_level(&self, issuer: &Unit, recipient: &Unit, all: &[&Unit]) -> Result<(), DomainError> {
        let (from, to) = (issuer.level.depth(), recipient.level.depth());
        for depth in from.saturating_add(1)..to {
            let Some(level) = Level::from_depth(depth) else { continue };
            let covered = all.iter().any(|u| u.level == level && self.region_within(&recipient.region, &u.region));
            if !covered {
                return Err(DomainError::SkippedLevel {
                    recipient: label(recipient),
                    issuer: label(issuer),
                    missing_level: level.name().into(),
                    region: self.ancestor_at(&recipient.region, level).unwrap_or(&recipient.region).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The region of `level` at or above `code`.
    fn ancestor_at(&self, code: &str, level: Level) -> Option<&str> {
        let mut current = Some(code);
        for _ in 0..MAX_REGION_DEPTH {
            let r = self.regions.get(current?)?;
            if r.level == level {
                return Some(r.code.as_str());
            }
            current = r.parent.as_deref();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Region, UnitKind};

    fn region(code: &str, parent: Option<&str>, level: Level) -> Region {
        Region { code: code.into(), name: code.into(), parent: parent.map(Into::into), level }
    }

    fn unit(id: &str, region: &str, level: Level, kind: UnitKind, tags: &[&str]) -> Unit {
        Unit {
            id: id.into(),
            full_name: format!("unit {id}"),
            short_name: String::new(),
            region: region.into(),
            level,
            kind,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            prefixes: vec![],
            keys: vec![],
        }
    }

    fn group(name: &str, scope: GroupScope, level: Option<Level>, kinds: &[UnitKind], tags: &[&str]) -> Group {
        Group {
            name: name.into(),
            scope,
            level,
            kinds: kinds.to_vec(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            description: String::new(),
        }
    }

    fn registry() -> Registry {
        use Level::*;
        use UnitKind::*;
        let mut r = Registry::default();
        for reg in [
            region("370000", None, Province),
            region("370100", Some("370000"), City),
            region("370300", Some("370000"), City),
            region("370304", Some("370300"), County),
            region("370304100", Some("370304"), Township),
        ] {
            r.regions.insert(reg.code.clone(), reg);
        }
        for u in [
            unit("370000.czt", "370000", Province, FinanceBureau, &[]),
            unit("370000.mzt", "370000", Province, Department, &["重点"]),
            unit("370000.jyt", "370000", Province, Department, &[]),
            unit("370100.czj", "370100", City, FinanceBureau, &[]),
            unit("370300.czj", "370300", City, FinanceBureau, &[]),
            unit("370300.gxq", "370300", County, FinanceBureau, &["功能区"]),
            unit("370304.czj", "370304", County, FinanceBureau, &[]),
            unit("370304.jyj", "370304", County, Department, &[]),
            unit("370304100.czs", "370304100", Township, FinanceOffice, &[]),
        ] {
            r.units.insert(u.id.clone(), u);
        }
        for g in [
            group("各市财政局", GroupScope::ChildRegions, Some(City), &[FinanceBureau], &[]),
            group("省直各部门、单位", GroupScope::SameRegion, Some(Province), &[Department, Institution], &[]),
            group("各镇(街道)财政所", GroupScope::ChildRegions, Some(Township), &[FinanceOffice], &[]),
            group("重点部门", GroupScope::SameRegion, None, &[], &["重点"]),
            group("功能区财政局", GroupScope::SameRegion, Some(County), &[FinanceBureau], &["功能区"]),
            group("全部", GroupScope::Subtree, None, &[], &[]),
        ] {
            r.groups.insert(g.name.clone(), g);
        }
        r
    }

    fn ids(units: Vec<&Unit>) -> Vec<&str> {
        units.into_iter().map(|u| u.id.as_str()).collect()
    }

    fn g(name: &str) -> RecipientSpec {
        RecipientSpec::Group(name.into())
    }
    fn u(id: &str) -> RecipientSpec {
        RecipientSpec::Unit(id.into())
    }

    #[test]
    fn groups_expand_relative_to_the_issuer() {
        let r = registry();
        let province = &r.units["370000.czt"];
        let zibo = &r.units["370300.czj"];
        let boshan = &r.units["370304.czj"];
        assert_eq!(ids(r.expand_group(&r.groups["各市财政局"], province)), ["370100.czj", "370300.czj"]);
        assert_eq!(ids(r.expand_group(&r.groups["省直各部门、单位"], province)), ["370000.jyt", "370000.mzt"]);
        assert_eq!(ids(r.expand_group(&r.groups["各镇(街道)财政所"], boshan)), ["370304100.czs"]);
        assert_eq!(ids(r.expand_group(&r.groups["重点部门"], province)), ["370000.mzt"]);
        assert_eq!(ids(r.expand_group(&r.groups["功能区财政局"], zibo)), ["370300.gxq"]);
        // The same group means something else for another issuer, and never the issuer itself.
        assert!(r.expand_group(&r.groups["各市财政局"], zibo).is_empty());
        assert_eq!(ids(r.expand_group(&r.groups["全部"], zibo)), ["370304.czj", "370304.jyj", "370304100.czs"]);
    }

    #[test]
    fn recipients_are_deduplicated_main_first_without_the_issuer() {
        let r = registry();
        let province = &r.units["370000.czt"];
        let e = r
            .resolve_recipients(
                province,
                &[g("各市财政局"), u("370300.czj")],
                &[u("370300.czj"), u("370000.czt"), g("重点部门")],
            )
            .expect("resolves");
        assert_eq!(e.main, ["370100.czj", "370300.czj"]);
        assert_eq!(e.cc, ["370000.mzt"]);
    }

    #[test]
    fn unknown_names_are_refused() {
        let r = registry();
        let p = &r.units["370000.czt"];
        assert_eq!(
            r.resolve_recipients(p, &[g("各县财政局")], &[]),
            Err(DomainError::UnknownGroup("各县财政局".into()))
        );
        assert_eq!(r.resolve_recipients(p, &[u("999999.x")], &[]), Err(DomainError::UnknownUnit("999999.x".into())));
        assert_eq!(r.resolve_recipients(p, &[], &[g("各市财政局")]), Err(DomainError::NoRecipients));
        assert_eq!(r.resolve_recipients(p, &[u("370000.czt")], &[]), Err(DomainError::NoRecipients));
    }

    #[test]
    fn a_district_cannot_send_up_or_sideways() {
        let r = registry();
        let boshan = &r.units["370304.czj"];
        for target in ["370100.czj", "370300.czj", "370000.mzt"] {
            assert!(
                matches!(r.resolve_recipients(boshan, &[u(target)], &[]), Err(DomainError::OutsideJurisdiction { .. })),
                "{target}"
            );
        }
        // Nor through cc.
        assert!(matches!(
            r.resolve_recipients(boshan, &[u("370304.jyj")], &[u("370100.czj")]),
            Err(DomainError::OutsideJurisdiction { .. })
        ));
    }

    #[test]
    fn skipping_a_level_needs_the_skipped_unit_on_cc() {
        let r = registry();
        let province = &r.units["370000.czt"];
        match r.resolve_recipients(province, &[u("370304.czj")], &[]) {
            Err(DomainError::SkippedLevel { missing_level, region, .. }) => {
                assert_eq!(missing_level, "市级");
                assert_eq!(region, "370300");
            }
            other => panic!("expected SkippedLevel, got {other:?}"),
        }
        // Jinan's bureau does not stand above Boshan.
        assert!(r.resolve_recipients(province, &[u("370304.czj")], &[u("370100.czj")]).is_err());
        let ok = r.resolve_recipients(province, &[u("370304.czj")], &[u("370300.czj")]).expect("with Zibo on cc");
        assert_eq!(ok.cc, ["370300.czj"]);
        // Two levels skipped need both.
        assert!(r.resolve_recipients(province, &[u("370304100.czs")], &[u("370300.czj")]).is_err());
        assert!(r.resolve_recipients(province, &[u("370304100.czs")], &[u("370300.czj"), u("370304.czj")]).is_ok());
        // One level down and the same level are always fine.
        let zibo = &r.units["370300.czj"];
        assert!(r.resolve_recipients(zibo, &[u("370304.czj"), u("370300.gxq")], &[]).is_ok());
    }

    #[test]
    fn region_walks_stop_on_cycles() {
        let mut r = registry();
        r.regions.insert("1".into(), region("1", Some("2"), Level::City));
        r.regions.insert("2".into(), region("2", Some("1"), Level::City));
        assert!(!r.region_within("1", "370000"));
        assert!(r.region_within("370304100", "370000"));
        assert!(r.region_within("370300", "370300"));
        assert!(!r.region_within("370300", "370304"));
    }
}
