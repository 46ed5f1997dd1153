//! Registry files: regions, units and recipient groups in TOML, as bundled in `registry/shandong.toml`. Pure: it
//! parses text; reading the file and signing the change are the caller's business.
use std::collections::HashSet;

use serde::Deserialize;
use thiserror::Error;

use crate::domain::model::{Group, GroupScope, Level, Region, Registry, Unit, UnitKind};

/// The registry of the real corpus chain, bundled with the binary.
pub const BUNDLED: &str = include_str!("../registry/shandong.toml");

/// Why a registry file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryFileError {
    /// Not valid TOML, or a field of the wrong type.
    #[error("registry file: {0}")]
    Syntax(String),
    /// A level, kind or scope name that does not exist.
    #[error("{item}: unknown {what} {value:?}")]
    UnknownName { item: String, what: &'static str, value: String },
    /// The same code, id or name twice.
    #[error("{0} appears twice")]
    Duplicate(String),
    /// A reference to a region not defined earlier in the file.
    #[error("{item}: region {region} is not defined before it")]
    MissingRegion { item: String, region: String },
    /// A malformed region code or unit id.
    #[error("{item}: {reason}")]
    Malformed { item: String, reason: String },
}

/// A parsed registry file, as domain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryFile {
    pub regions: Vec<Region>,
    pub units: Vec<Unit>,
    pub groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(default)]
    regions: Vec<RegionRepr>,
    #[serde(default)]
    units: Vec<UnitRepr>,
    #[serde(default)]
    groups: Vec<GroupRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionRepr {
    code: String,
    name: String,
    level: String,
    #[serde(default)]
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitRepr {
    id: String,
    full_name: String,
    #[serde(default)]
    short_name: String,
    region: String,
    level: String,
    kind: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRepr {
    name: String,
    scope: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    description: String,
}

/// The level named in files.
pub fn level_by_name(name: &str) -> Option<Level> {
    Some(match name {
        "province" => Level::Province,
        "city" => Level::City,
        "county" => Level::County,
        "township" => Level::Township,
        _ => return None,
    })
}

/// The unit kind named in files.
pub fn kind_by_name(name: &str) -> Option<UnitKind> {
    Some(match name {
        "finance_bureau" => UnitKind::FinanceBureau,
        "department" => UnitKind::Department,
        "institution" => UnitKind::Institution,
        "finance_office" => UnitKind::FinanceOffice,
        "audit_bureau" => UnitKind::AuditBureau,
        "office" => UnitKind::Office,
        _ => return None,
    })
}

fn scope_by_name(name: &str) -> Option<GroupScope> {
    Some(match name {
        "same_region" => GroupScope::SameRegion,
        "child_regions" => GroupScope::ChildRegions,
        "subtree" => GroupScope::Subtree,
        _ => return None,
    })
}

fn named<T>(item: &str, what: &'static str, value: &str, f: fn(&str) -> Option<T>) -> Result<T, RegistryFileError> {
    f(value).ok_or_else(|| RegistryFileError::UnknownName { item: item.into(), what, value: value.into() })
}

fn unit_id_ok(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
}

/// Parses and checks a registry file.
pub fn parse(text: &str) -> Result<RegistryFile, RegistryFileError> {
    let repr: FileRepr = toml::from_str(text).map_err(|e| RegistryFileError::Syntax(e.to_string()))?;
    let mut seen = HashSet::new();
    let mut regions = Vec::with_capacity(repr.regions.len());
    for r in repr.regions {
        let item = format!("region {}", r.code);
        if !((r.code.len() == 6 || r.code.len() == 9) && r.code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(RegistryFileError::Malformed { item, reason: "a region code has 6 or 9 digits".into() });
        }
        if !seen.insert(item.clone()) {
            return Err(RegistryFileError::Duplicate(item));
        }
        if let Some(p) = &r.parent
            && !seen.contains(&format!("region {p}"))
        {
            return Err(RegistryFileError::MissingRegion { item, region: p.clone() });
        }
        let level = named(&item, "level", &r.level, level_by_name)?;
        regions.push(Region { code: r.code, name: r.name, parent: r.parent, level });
    }
    let mut units = Vec::with_capacity(repr.units.len());
    for u in repr.units {
        let item = format!("unit {}", u.id);
        if !unit_id_ok(&u.id) {
            return Err(RegistryFileError::Malformed {
                item,
                reason: "a unit id is 1 to 64 of a-z, 0-9, '.', '-', starting with a letter or digit".into(),
            });
        }
        if !seen.insert(item.clone()) {
            return Err(RegistryFileError::Duplicate(item));
        }
        if !seen.contains(&format!("region {}", u.region)) {
            return Err(RegistryFileError::MissingRegion { item, region: u.region });
        }
        for p in &u.prefixes {
            if !seen.insert(format!("prefix {p}")) {
                return Err(RegistryFileError::Duplicate(format!("prefix {p}")));
            }
        }
        units.push(Unit {
            level: named(&item, "level", &u.level, level_by_name)?,
            kind: named(&item, "kind", &u.kind, kind_by_name)?,
            id: u.id,
            full_name: u.full_name,
            short_name: u.short_name,
            region: u.region,
            tags: u.tags,
            prefixes: u.prefixes,
            keys: vec![],
        });
    }
    let mut groups = Vec::with_capacity(repr.groups.len());
    for g in repr.groups {
        let item = format!("group {}", g.name);
        if !seen.insert(item.clone()) {
            return Err(RegistryFileError::Duplicate(item));
        }
        let level = g.level.as_deref().map(|l| named(&item, "level", l, level_by_name)).transpose()?;
        let kinds = g.kinds.iter().map(|k| named(&item, "kind", k, kind_by_name)).collect::<Result<Vec<_>, _>>()?;
        groups.push(Group {
            scope: named(&item, "scope", &g.scope, scope_by_name)?,
            name: g.name,
            level,
            kinds,
            tags: g.tags,
            description: g.description,
        });
    }
    Ok(RegistryFile { regions, units, groups })
}

/// The bundled Shandong registry.
pub fn bundled() -> Result<RegistryFile, RegistryFileError> {
    parse(BUNDLED)
}

impl RegistryFile {
    /// These items as a registry change (for the operator to sign), each unit with the seal keys `keys` gives for
    /// its id. A failure of `keys` stops it: the keystore's, when keys are loaded or generated unit by unit.
    pub fn into_change<E>(
        self,
        request_id: String,
        mut keys: impl FnMut(&str) -> Result<Vec<crate::pb::SealKey>, E>,
    ) -> Result<crate::pb::RegistryChange, E> {
        let mut units = Vec::with_capacity(self.units.len());
        for u in self.units {
            let seal_keys = keys(&u.id)?;
            units.push(crate::pb::Unit { seal_keys, ..u.into() });
        }
        Ok(crate::pb::RegistryChange {
            request_id,
            regions: self.regions.into_iter().map(Into::into).collect(),
            units,
            groups: self.groups.into_iter().map(Into::into).collect(),
            ..Default::default()
        })
    }

    /// The in-memory registry these items make.
    pub fn into_registry(self) -> Registry {
        Registry {
            regions: self.regions.into_iter().map(|r| (r.code.clone(), r)).collect(),
            units: self.units.into_iter().map(|u| (u.id.clone(), u)).collect(),
            groups: self.groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
            auditors: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(reg: &Registry, group: &str, issuer: &str) -> Vec<String> {
        reg.expand_group(&reg.groups[group], &reg.units[issuer]).into_iter().map(|u| u.full_name.clone()).collect()
    }

    #[test]
    fn the_bundled_registry_parses_and_is_complete() {
        let file = bundled().expect("parses");
        assert_eq!(file.regions.iter().filter(|r| r.level == Level::City).count(), 16);
        let reg = file.into_registry();
        let city_bureaus = reg.units.values().filter(|u| u.level == Level::City && u.kind == UnitKind::FinanceBureau);
        assert_eq!(city_bureaus.count(), 16);
        for r in reg.regions.values() {
            if let Some(p) = &r.parent {
                assert!(reg.regions.contains_key(p), "{}", r.code);
            }
        }
    }

    #[test]
    fn every_corpus_group_expands_to_real_units() {
        let reg = bundled().expect("parses").into_registry();
        let province = "370000.czt";
        let cities = expand(&reg, "各市财政局", province);
        assert_eq!(cities.len(), 16);
        assert!(cities.contains(&"淄博市财政局".to_string()));
        let depts = expand(&reg, "省直各部门、单位", province);
        assert!(depts.len() >= 8 && !depts.contains(&"山东省财政厅".to_string()), "{depts:?}");
        assert!(!expand(&reg, "省直重点领域主管部门", province).is_empty());

        let zibo = "370300.czj";
        assert_eq!(expand(&reg, "各区县财政局", zibo).len(), 8);
        assert_eq!(
            expand(&reg, "高新区、经开区、文昌湖区财政局", zibo),
            ["淄博高新技术产业开发区财政局", "淄博经济开发区财政局", "淄博市文昌湖省级旅游度假区财政局"]
        );
        let city_depts = expand(&reg, "市直各部门、单位", zibo);
        assert!(city_depts.len() >= 5 && city_depts.iter().all(|n| n.starts_with("淄博市")), "{city_depts:?}");

        let boshan = "370304.czj";
        let district = expand(&reg, "区直各部门、单位", boshan);
        assert!(district.len() >= 5 && district.iter().all(|n| n.starts_with("淄博市博山区")), "{district:?}");
        assert_eq!(expand(&reg, "各镇(街道)财政所", boshan).len(), 10);
        assert_eq!(expand(&reg, "开发区财政审计局", boshan), ["博山经济开发区财政审计局"]);
    }

    #[test]
    fn bad_files_are_refused_with_the_offending_item() {
        let region = "[[regions]]\ncode = \"370000\"\nname = \"山东省\"\nlevel = \"province\"\n";
        assert!(matches!(parse("[[regions]]\ncode = 1"), Err(RegistryFileError::Syntax(_))));
        assert!(matches!(parse("[[towns]]\nname = \"x\""), Err(RegistryFileError::Syntax(_))));
        assert!(matches!(
            parse("[[regions]]\ncode = \"37\"\nname = \"x\"\nlevel = \"city\""),
            Err(RegistryFileError::Malformed { .. })
        ));
        assert_eq!(parse(&format!("{region}{region}")), Err(RegistryFileError::Duplicate("region 370000".into())));
        assert!(matches!(
            parse("[[regions]]\ncode = \"370300\"\nname = \"x\"\nlevel = \"city\"\nparent = \"370000\""),
            Err(RegistryFileError::MissingRegion { .. })
        ));
        assert!(matches!(
            parse(&region.replace("province", "state")),
            Err(RegistryFileError::UnknownName { what: "level", .. })
        ));
        let unit = |id: &str, region: &str, kind: &str, prefix: &str| {
            format!(
                "[[units]]\nid = \"{id}\"\nfull_name = \"x\"\nregion = \"{region}\"\nlevel = \"province\"\nkind = \"{kind}\"\nprefixes = [\"{prefix}\"]\n"
            )
        };
        assert!(matches!(
            parse(&format!("{region}{}", unit("Bad", "370000", "office", "鲁"))),
            Err(RegistryFileError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&format!("{region}{}", unit("a", "370100", "office", "鲁"))),
            Err(RegistryFileError::MissingRegion { .. })
        ));
        assert!(matches!(
            parse(&format!("{region}{}", unit("a", "370000", "ministry", "鲁"))),
            Err(RegistryFileError::UnknownName { what: "kind", .. })
        ));
        assert_eq!(
            parse(&format!("{region}{}{}", unit("a", "370000", "office", "鲁"), unit("b", "370000", "office", "鲁"))),
            Err(RegistryFileError::Duplicate("prefix 鲁".into()))
        );
        assert!(matches!(
            parse("[[groups]]\nname = \"g\"\nscope = \"everywhere\""),
            Err(RegistryFileError::UnknownName { what: "scope", .. })
        ));
    }
}
