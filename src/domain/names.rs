//! Matching names as printed on a document (主送 lines, issuer names) to the registry: recipient groups by name,
//! units by full or short name. Used by the importer, which reads documents written by people, not by gongwen.
use super::model::{RecipientSpec, Registry, Unit};

/// Name forms differ in ways that do not change meaning: half- or full-width brackets, spaces left by PDF
/// extraction, a trailing full stop or colon. Two names match when they are equal after this.
pub fn canonical(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '(' => '（',
            ')' => '）',
            c => c,
        })
        .collect::<String>()
        .trim_end_matches(['。', '：', ':', '，', ',', '；', ';', '、'])
        .to_owned()
}

impl Registry {
    /// The unit whose full or short name is `name` (full names first: a short name may be shared).
    pub fn unit_named(&self, name: &str) -> Option<&Unit> {
        let want = canonical(name);
        if want.is_empty() {
            return None;
        }
        let full = self.units.values().find(|u| canonical(&u.full_name) == want);
        full.or_else(|| {
            let mut short = self.units.values().filter(|u| canonical(&u.short_name) == want);
            // An ambiguous short name matches nothing rather than the wrong unit.
            match (short.next(), short.next()) {
                (Some(u), None) => Some(u),
                _ => None,
            }
        })
    }

    fn recipient_named(&self, name: &str) -> Option<RecipientSpec> {
        let want = canonical(name);
        if let Some(g) = self.groups.keys().find(|g| canonical(g) == want) {
            return Some(RecipientSpec::Group(g.clone()));
        }
        self.unit_named(name).map(|u| RecipientSpec::Unit(u.id.clone()))
    }

    /// Recipients as printed → groups and units. Each item is tried whole first, because a group's own name may
    /// hold a 、 (省直各部门、单位); an item that does not match whole is split at ，、；and its parts tried.
    /// Returns every name that matched nothing, so one answer lists all that must be fixed.
    pub fn match_recipients(&self, written: &[String]) -> Result<Vec<RecipientSpec>, Vec<String>> {
        let mut found: Vec<RecipientSpec> = vec![];
        let mut missing = vec![];
        for item in written {
            for part in item.split(['，', ',', '；', ';']).filter(|p| !canonical(p).is_empty()) {
                if let Some(r) = self.recipient_named(part) {
                    push_new(&mut found, r);
                    continue;
                }
                for piece in part.split('、').filter(|p| !canonical(p).is_empty()) {
                    match self.recipient_named(piece) {
                        Some(r) => push_new(&mut found, r),
                        None => missing.push(canonical(piece)),
                    }
                }
            }
        }
        if missing.is_empty() { Ok(found) } else { Err(missing) }
    }
}

fn push_new(found: &mut Vec<RecipientSpec>, r: RecipientSpec) {
    if !found.contains(&r) {
        found.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Group, GroupScope, Level, Unit, UnitKind};

    fn unit(id: &str, full: &str, short: &str) -> Unit {
        Unit {
            id: id.into(),
            full_name: full.into(),
            short_name: short.into(),
            region: "370300".into(),
            level: Level::City,
            kind: UnitKind::FinanceBureau,
            tags: vec![],
            prefixes: vec![],
            keys: vec![],
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::default();
        for u in [
            unit("zibo", "淄博市财政局", "淄博市财政局"),
            unit("boshan", "淄博市博山区财政局", "博山区财政局"),
            unit("a", "甲县财政局", "县财政局"),
            unit("b", "乙县财政局", "县财政局"),
        ] {
            r.units.insert(u.id.clone(), u);
        }
        for g in ["省直各部门、单位", "各镇(街道)财政所", "各区县财政局"] {
            r.groups.insert(
                g.into(),
                Group {
                    name: g.into(),
                    scope: GroupScope::SameRegion,
                    level: None,
                    kinds: vec![],
                    tags: vec![],
                    description: String::new(),
                },
            );
        }
        r
    }

    #[test]
    fn groups_with_a_dunhao_match_whole_and_lists_split() {
        let r = registry();
        let got = r.match_recipients(&["省直各部门、单位，博山区财政局、淄博市财政局".into()]).expect("all match");
        assert_eq!(
            got,
            vec![
                RecipientSpec::Group("省直各部门、单位".into()),
                RecipientSpec::Unit("boshan".into()),
                RecipientSpec::Unit("zibo".into())
            ]
        );
    }

    #[test]
    fn bracket_width_spaces_and_punctuation_do_not_matter() {
        let r = registry();
        let got = r.match_recipients(&["各镇（街道） 财政所：".into(), "各区县财政局，各区县财政局".into()]);
        assert_eq!(
            got,
            Ok(vec![RecipientSpec::Group("各镇(街道)财政所".into()), RecipientSpec::Group("各区县财政局".into())])
        );
    }

    #[test]
    fn every_unmatched_name_is_listed_and_ambiguous_short_names_match_nothing() {
        let r = registry();
        let err = r.match_recipients(&["县财政局、月球财政局，博山区财政局".into()]).expect_err("two unknown");
        assert_eq!(err, vec!["县财政局".to_string(), "月球财政局".to_string()]);
        assert_eq!(r.unit_named("甲县财政局").map(|u| u.id.as_str()), Some("a"));
        assert!(r.unit_named("").is_none());
    }
}
