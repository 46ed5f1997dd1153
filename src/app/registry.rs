//! Registry operations: signed registry changes by the operator, and registry reads.
use super::{App, AppError, FirstResult, remember, replayed, schema};
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::keys::{self, NoParent};
use crate::domain::model::{EventKind, Group, Region, Registry, SealKey, Unit};
use crate::pb;
use crate::store::{Store, StoreError};

/// Loads the whole registry from the store.
pub fn load(store: &dyn Store) -> Result<Registry, StoreError> {
    let mut registry = Registry::default();
    for pair in store.scan(schema::REGIONS, None, false) {
        let (k, v) = pair?;
        let r: Region = schema::decode(&k, &v)?;
        registry.regions.insert(r.code.clone(), r);
    }
    for pair in store.scan(schema::UNITS, None, false) {
        let (k, v) = pair?;
        let u: Unit = schema::decode(&k, &v)?;
        registry.units.insert(u.id.clone(), u);
    }
    for pair in store.scan(schema::GROUPS, None, false) {
        let (k, v) = pair?;
        let g: Group = schema::decode(&k, &v)?;
        registry.groups.insert(g.name.clone(), g);
    }
    for pair in store.scan(schema::AUDITORS, None, false) {
        let (k, _) = pair?;
        let rest = &k[schema::AUDITORS.len()..];
        let mut parts = rest.splitn(2, |b| *b == 0);
        if let (Some(unit), Some(region)) = (parts.next(), parts.next()) {
            let (unit, region) =
                (String::from_utf8_lossy(unit).into_owned(), String::from_utf8_lossy(region).into_owned());
            registry.auditors.entry(unit).or_default().push(region);
        }
    }
    Ok(registry)
}

/// What a registry change created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSummary {
    pub regions: u32,
    pub units: u32,
    pub groups: u32,
    pub baselines: u32,
    pub keys: u32,
    pub event_seq: u64,
}

/// The new items of a change, checked against the registry they extend.
pub(crate) struct Additions {
    pub(crate) regions: Vec<Region>,
    pub(crate) units: Vec<Unit>,
    pub(crate) groups: Vec<Group>,
    baselines: Vec<(String, u32, u32)>,
    pub(crate) grants: Vec<(String, String)>,
    keys_changed: u32,
    /// Units whose keys changed, as they are after the change.
    rekeyed: Vec<Unit>,
    pub(crate) next: Registry,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Checks every item of a change against `current` (and the items before it) and keeps what is new.
pub(crate) fn check_change(
    current: &Registry,
    change: pb::RegistryChange,
    now: DateTime<Utc>,
) -> Result<Additions, AppError> {
    let mut next = current.clone();
    let mut add = Additions {
        regions: vec![],
        units: vec![],
        groups: vec![],
        baselines: vec![],
        grants: vec![],
        keys_changed: 0,
        rekeyed: vec![],
        next: Registry::default(),
    };
    let mut key_ids: HashSet<String> =
        current.units.values().flat_map(|u| u.keys.iter().map(|k| k.key_id.clone())).collect();
    for r in change.regions {
        let region = Region::try_from(r)?;
        if let Some(parent) = &region.parent {
            let p = next.regions.get(parent).ok_or_else(|| {
                AppError::NotFound(format!("region {}: parent region {parent} does not exist", region.code))
            })?;
            if p.level >= region.level {
                return Err(AppError::Invalid(format!(
                    "region {}: a {} region cannot lie below the {} region {parent}",
                    region.code,
                    region.level.name(),
                    p.level.name()
                )));
            }
        }
        match next.regions.get(&region.code) {
            Some(existing) if *existing == region => continue,
            Some(_) => {
                return Err(AppError::AlreadyExists(format!(
                    "region {} exists already with different content",
                    region.code
                )));
            }
            None => {}
        }
        next.regions.insert(region.code.clone(), region.clone());
        add.regions.push(region);
    }
    for u in change.units {
        let unit = Unit::try_from(u)?;
        if !next.regions.contains_key(&unit.region) {
            return Err(AppError::NotFound(format!("unit {}: region {} does not exist", unit.id, unit.region)));
        }
        match next.units.get(&unit.id) {
            Some(existing) if *existing == unit => continue,
            Some(_) => {
                return Err(AppError::AlreadyExists(format!("unit {} exists already with different content", unit.id)));
            }
            None => {}
        }
        if let Some((p, owner)) = unit
            .prefixes
            .iter()
            .find_map(|p| next.units.values().find(|o| o.id != unit.id && o.prefixes.contains(p)).map(|o| (p, &o.id)))
        {
            return Err(AppError::AlreadyExists(format!(
                "unit {}: the prefix {p} belongs to {owner} (numbering is per prefix, so a prefix has one owner)",
                unit.id
            )));
        }
        for k in &unit.keys {
            if !key_ids.insert(k.key_id.clone()) {
                return Err(AppError::AlreadyExists(format!("seal key id {} is already registered", k.key_id)));
            }
        }
        next.units.insert(unit.id.clone(), unit.clone());
        add.units.push(unit);
    }
    for g in change.groups {
        let group = Group::try_from(g)?;
        match next.groups.get(&group.name) {
            Some(existing) if *existing == group => continue,
            Some(_) => {
                return Err(AppError::AlreadyExists(format!(
                    "recipient group {} exists already with different content",
                    group.name
                )));
            }
            None => {}
        }
        next.groups.insert(group.name.clone(), group.clone());
        add.groups.push(group);
    }
    for b in change.number_baselines {
        crate::domain::number::validate_prefix(&b.prefix)?;
        if !(1949..=2999).contains(&b.year) {
            return Err(AppError::field("number_baselines.year", format!("{} is not a plausible year", b.year)));
        }
        if !next.units.values().any(|u| u.prefixes.contains(&b.prefix)) {
            return Err(AppError::NotFound(format!("no unit owns the prefix {}", b.prefix)));
        }
        add.baselines.push((b.prefix, b.year, b.last_serial));
    }
    for g in change.auditor_grants {
        if !next.units.contains_key(&g.unit_id) {
            return Err(AppError::NotFound(format!("auditor grant: unknown unit {:?}", g.unit_id)));
        }
        if !next.regions.contains_key(&g.region_code) {
            return Err(AppError::NotFound(format!("auditor grant: unknown region {:?}", g.region_code)));
        }
        let regions = next.auditors.entry(g.unit_id.clone()).or_default();
        if !regions.contains(&g.region_code) {
            regions.push(g.region_code.clone());
            add.grants.push((g.unit_id, g.region_code));
        }
    }
    for kc in change.key_changes {
        let unit = next
            .units
            .get_mut(&kc.unit_id)
            .ok_or_else(|| AppError::NotFound(format!("key change: unknown unit {:?}", kc.unit_id)))?;
        match kc.change {
            Some(pb::key_change::Change::Add(k)) => add_key(unit, k, &mut key_ids)?,
            Some(pb::key_change::Change::Revoke(r)) => revoke_key(unit, &r, now)?,
            None => return Err(AppError::field("key_changes", "add or revoke is required")),
        }
        add.keys_changed += 1;
        let updated = unit.clone();
        add.rekeyed.retain(|u| u.id != updated.id);
        add.rekeyed.push(updated);
    }
    add.next = next;
    Ok(add)
}

/// Adds a new key to `unit`; `taken` holds every key id in the registry, and gets this one.
fn add_key(unit: &mut Unit, k: pb::SealKey, taken: &mut HashSet<String>) -> Result<(), AppError> {
    let key = SealKey::try_from(k)?;
    if !taken.insert(key.key_id.clone()) {
        return Err(AppError::AlreadyExists(format!("seal key id {} is already registered", key.key_id)));
    }
    unit.keys.push(key);
    Ok(())
}

/// Revokes one of `unit`'s keys from the given time (`now` when unset). A compromise may be dated in the past;
/// a revocation may only move earlier, since moving it later would revive signatures already refused.
fn revoke_key(unit: &mut Unit, r: &pb::KeyRevocation, now: DateTime<Utc>) -> Result<(), AppError> {
    let at = match &r.revoked_at {
        Some(t) => DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            .ok_or_else(|| AppError::field("revoked_at", "out of range"))?,
        None => now,
    };
    let key = unit
        .keys
        .iter_mut()
        .find(|k| k.key_id == r.key_id)
        .ok_or_else(|| AppError::NotFound(format!("unit {} has no key {:?}", unit.id, r.key_id)))?;
    if let Some(earlier) = key.revoked_at
        && earlier <= at
    {
        return Err(AppError::Precondition(format!(
            "key {} is already revoked since {earlier}; a revocation can only move earlier",
            r.key_id
        )));
    }
    key.revoked_at = Some(at);
    Ok(())
}

/// Checks a `ChangeUnitKeys` for `signer` (`None`: the operator) against `current`: the signer must be the
/// unit's parent unit, and the unit must keep a key that is not revoked at `now`. Returns the unit as it is after.
pub(crate) fn check_key_change(
    current: &Registry,
    signer: Option<&str>,
    change: &pb::ChangeUnitKeys,
    now: DateTime<Utc>,
) -> Result<(Unit, u32), AppError> {
    let target = current
        .units
        .get(&change.unit_id)
        .ok_or_else(|| AppError::NotFound(format!("unknown unit {:?}", change.unit_id)))?;
    if let Some(signer) = signer {
        may_change_keys(current, signer, target)?;
    }
    if change.add_keys.is_empty() && change.revoke.is_empty() {
        return Err(AppError::field("add_keys", "a key change adds or revokes at least one key"));
    }
    let mut taken: HashSet<String> =
        current.units.values().flat_map(|u| u.keys.iter().map(|k| k.key_id.clone())).collect();
    let mut unit = target.clone();
    for k in &change.add_keys {
        add_key(&mut unit, k.clone(), &mut taken)?;
    }
    for (i, r) in change.revoke.iter().enumerate() {
        if change.revoke[..i].iter().any(|o| o.key_id == r.key_id) {
            return Err(AppError::field("revoke", format!("key {:?} is revoked twice in one change", r.key_id)));
        }
        revoke_key(&mut unit, r, now)?;
    }
    if !unit.keys.iter().any(|k| k.revoked_at.is_none_or(|t| t > now)) {
        return Err(AppError::Precondition(format!(
            "{} would keep no valid seal key; add its new key in the same change (retiring a unit is the operator's, \
             through a registry change)",
            unit.full_name
        )));
    }
    Ok((unit, count(change.add_keys.len() + change.revoke.len())))
}

/// PERMISSION_DENIED unless `signer` is `target`'s parent unit.
fn may_change_keys(registry: &Registry, signer: &str, target: &Unit) -> Result<(), AppError> {
    match keys::parent_unit(registry, target) {
        Ok(parent) if parent.id == signer => Ok(()),
        Ok(parent) => Err(AppError::Denied(format!(
            "only {} ({}), the parent unit of {}, or the operator may change its keys; {signer} may not",
            parent.full_name, parent.id, target.full_name
        ))),
        Err(NoParent::None) => Err(AppError::Denied(format!(
            "{} has no parent unit in the registry, so only the operator may change its keys",
            target.full_name
        ))),
        Err(NoParent::Ambiguous(candidates)) => Err(AppError::Denied(format!(
            "{} has no single parent unit ({} qualify equally), so only the operator may change its keys",
            target.full_name,
            candidates.join(", ")
        ))),
    }
}

pub(super) const OPERATOR_ACTOR: &str = "operator";

impl App {
    /// Applies a signed registry change atomically. It runs to its end in a task of its own even when the caller
    /// goes away (a client that gives up, a deadline, the end of a stop's grace): the change commits whatever
    /// happens to the caller, and the running registry must then show it too, or a revoked key would be honoured
    /// until the next start. The task also keeps the registry lock until then, so the next change builds on this one.
    /// Needs a Tokio runtime, as every async call of the app does.
    pub async fn apply_registry_change(
        self: &Arc<Self>,
        envelope: pb::SignedEnvelope,
    ) -> Result<ChangeSummary, AppError> {
        let app = Arc::clone(self);
        Self::to_the_end(async move { app.apply_registry_change_now(envelope).await }).await
    }

    /// Runs a registry change in a task of its own, to its end. Nothing between a change's commit and its update of
    /// the running registry can panic (the update clones, collects and sorts; a failed allocation aborts the
    /// process), so a committed change always reaches the running registry before the registry lock is released.
    async fn to_the_end<T: Send + 'static>(
        change: impl std::future::Future<Output = Result<T, AppError>> + Send + 'static,
    ) -> Result<T, AppError> {
        tokio::spawn(change).await?
    }

    async fn apply_registry_change_now(&self, envelope: pb::SignedEnvelope) -> Result<ChangeSummary, AppError> {
        let signed = self.open_envelope::<pb::RegistryChange>(&envelope)?;
        self.verify_operator(&envelope)?;
        let _guard = self.registry_lock.lock().await;
        let current = self.snapshot();
        let request_id = signed.statement.request_id.clone();
        let at = self.now();
        let add = check_change(&current.registry, signed.statement, at)?;
        let new_items = !(add.regions.is_empty()
            && add.units.is_empty()
            && add.groups.is_empty()
            && add.grants.is_empty()
            && add.rekeyed.is_empty());
        let keys_changed = add.keys_changed;
        let Additions { regions, units, groups, baselines, grants, rekeyed, next, .. } = add;
        let digest = signed.digest;
        let envelope_bytes = signed.envelope;
        let summary = self
            .write(move |tx| {
                if let Some(first) = replayed(tx, OPERATOR_ACTOR, &request_id, &digest)? {
                    return match first {
                        FirstResult::Registry { regions, units, groups, baselines, keys, event_seq } => {
                            Ok((ChangeSummary { regions, units, groups, baselines, keys, event_seq }, false))
                        }
                        _ => Err(AppError::AlreadyExists(format!(
                            "request id {request_id:?} was used for another request"
                        ))),
                    };
                }
                let mut summary = ChangeSummary {
                    regions: count(regions.len()),
                    units: count(units.len()),
                    groups: count(groups.len()),
                    baselines: 0,
                    keys: keys_changed,
                    event_seq: 0,
                };
                for (prefix, year, last) in &baselines {
                    let key = schema::serial(prefix, *year);
                    let current = schema::load_u32(tx, &key)?;
                    if current > *last {
                        return Err(AppError::Precondition(format!(
                            "numbering of {prefix}〔{year}〕 is already at {current}; a baseline cannot move it back to {last}"
                        )));
                    }
                    if current < *last {
                        tx.put(&key, &last.to_be_bytes());
                        summary.baselines += 1;
                    }
                }
                let changed = new_items || summary.baselines > 0;
                if changed {
                    for r in &regions {
                        schema::save(tx, &schema::region(&r.code), r)?;
                    }
                    for u in &units {
                        schema::save(tx, &schema::unit(&u.id), u)?;
                    }
                    for g in &groups {
                        schema::save(tx, &schema::group(&g.name), g)?;
                    }
                    for (unit, region) in &grants {
                        tx.put(&schema::auditor(unit, region), &[]);
                    }
                    for u in &rekeyed {
                        schema::save(tx, &schema::unit(&u.id), u)?;
                    }
                    summary.event_seq = super::append_event(
                        tx,
                        EventKind::RegistryChanged,
                        OPERATOR_ACTOR,
                        None,
                        &envelope_bytes,
                        at,
                    )?;
                }
                let first = FirstResult::Registry {
                    regions: summary.regions,
                    units: summary.units,
                    groups: summary.groups,
                    baselines: summary.baselines,
                    keys: summary.keys,
                    event_seq: summary.event_seq,
                };
                remember(tx, OPERATOR_ACTOR, &request_id, digest, first)?;
                Ok((summary, changed))
            })
            .await;
        let (summary, changed) = summary?;
        if changed {
            self.set_snapshot(next);
        }
        Ok(summary)
    }

    /// Applies a signed `ChangeUnitKeys`: the parent unit's (with a seal valid now) or the operator's. Like
    /// [`App::apply_registry_change`], it runs to its end even when its caller goes away.
    pub async fn change_unit_keys(self: &Arc<Self>, envelope: pb::SignedEnvelope) -> Result<ChangeSummary, AppError> {
        let app = Arc::clone(self);
        Self::to_the_end(async move { app.change_unit_keys_now(envelope).await }).await
    }

    async fn change_unit_keys_now(&self, envelope: pb::SignedEnvelope) -> Result<ChangeSummary, AppError> {
        let signed = self.open_envelope::<pb::ChangeUnitKeys>(&envelope)?;
        let signer = signed.statement.signer_unit_id.clone();
        let actor = if signer.is_empty() {
            self.verify_operator(&envelope)?;
            OPERATOR_ACTOR.to_owned()
        } else {
            self.verify_unit(&self.snapshot(), &signer, &envelope)?;
            signer
        };
        let _guard = self.registry_lock.lock().await;
        let current = self.snapshot();
        let at = self.now();
        let by = (actor != OPERATOR_ACTOR).then_some(actor.as_str());
        // Kept as a result: an identical retry gets its first answer even though the change no longer applies.
        let checked = check_key_change(&current.registry, by, &signed.statement, at);
        let request_id = signed.statement.request_id.clone();
        let digest = signed.digest;
        let envelope_bytes = signed.envelope;
        let written_actor = actor.clone();
        let (summary, unit) = self
            .write(move |tx| {
                let actor = written_actor;
                if let Some(first) = replayed(tx, &actor, &request_id, &digest)? {
                    return match first {
                        FirstResult::Registry { regions, units, groups, baselines, keys, event_seq } => {
                            Ok((ChangeSummary { regions, units, groups, baselines, keys, event_seq }, None))
                        }
                        _ => Err(AppError::AlreadyExists(format!(
                            "request id {request_id:?} was used for another request"
                        ))),
                    };
                }
                let (unit, keys) = checked?;
                schema::save(tx, &schema::unit(&unit.id), &unit)?;
                let event_seq = super::append_event(tx, EventKind::KeysChanged, &actor, None, &envelope_bytes, at)?;
                let summary = ChangeSummary { regions: 0, units: 0, groups: 0, baselines: 0, keys, event_seq };
                let first = FirstResult::Registry { regions: 0, units: 0, groups: 0, baselines: 0, keys, event_seq };
                remember(tx, &actor, &request_id, digest, first)?;
                Ok((summary, Some(unit)))
            })
            .await?;
        if let Some(unit) = unit {
            let mut next = current.registry.clone();
            next.units.insert(unit.id.clone(), unit);
            self.set_snapshot(next);
        }
        Ok(summary)
    }

    /// One region.
    pub fn region(&self, code: &str) -> Result<Region, AppError> {
        self.snapshot()
            .registry
            .regions
            .get(code)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("unknown region {code:?}")))
    }

    /// Regions in code order, optionally one subtree.
    pub fn regions(&self, subtree_of: &str) -> Result<Vec<Region>, AppError> {
        let snap = self.snapshot();
        if !subtree_of.is_empty() && !snap.registry.regions.contains_key(subtree_of) {
            return Err(AppError::NotFound(format!("unknown region {subtree_of:?}")));
        }
        Ok(snap
            .registry
            .regions
            .values()
            .filter(|r| subtree_of.is_empty() || snap.registry.region_within(&r.code, subtree_of))
            .cloned()
            .collect())
    }

    /// One unit.
    pub fn unit(&self, id: &str) -> Result<Unit, AppError> {
        self.snapshot().unit(id).cloned()
    }

    /// Units matching every given filter, in id order, after `after` (a unit id), at most `limit`.
    pub fn units(
        &self,
        filter: &UnitFilter,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<Unit>, Option<String>), AppError> {
        let snap = self.snapshot();
        let reg = &snap.registry;
        if !filter.region_subtree.is_empty() && !reg.regions.contains_key(&filter.region_subtree) {
            return Err(AppError::NotFound(format!("unknown region {:?}", filter.region_subtree)));
        }
        let mut out: Vec<Unit> = reg
            .units
            .values()
            .filter(|u| after.is_empty() || u.id.as_str() > after)
            .filter(|u| filter.region_subtree.is_empty() || reg.region_within(&u.region, &filter.region_subtree))
            .filter(|u| filter.level.is_none_or(|l| u.level == l))
            .filter(|u| filter.kind.is_none_or(|k| u.kind == k))
            .filter(|u| filter.tag.is_empty() || u.tags.contains(&filter.tag))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|u| u.id.clone())
        } else {
            None
        };
        Ok((out, next))
    }

    /// All groups in name order.
    pub fn groups(&self) -> Vec<Group> {
        self.snapshot().registry.groups.values().cloned().collect()
    }

    /// What a group means for a would-be issuer.
    pub fn expand_group(&self, group: &str, issuer: &str) -> Result<Vec<Unit>, AppError> {
        let snap = self.snapshot();
        let issuer = snap.unit(issuer)?;
        let g = snap
            .registry
            .groups
            .get(group)
            .ok_or_else(|| AppError::NotFound(format!("unknown recipient group {group:?}")))?;
        Ok(snap.registry.expand_group(g, issuer).into_iter().cloned().collect())
    }
}

/// Unit list filters (all combine with AND; empty or `None` means no filter).
#[derive(Debug, Clone, Default)]
pub struct UnitFilter {
    pub region_subtree: String,
    pub level: Option<crate::domain::model::Level>,
    pub kind: Option<crate::domain::model::UnitKind>,
    pub tag: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_support::{app_with, operator, until};

    fn region(code: &str, parent: &str, level: i32) -> pb::Region {
        pb::Region { code: code.into(), name: format!("r{code}"), parent_code: parent.into(), level }
    }

    #[test]
    fn a_change_must_respect_parents_and_levels() {
        let reg = Registry::default();
        let ok = pb::RegistryChange {
            request_id: "r".into(),
            regions: vec![region("370000", "", 1), region("370300", "370000", 2)],
            ..Default::default()
        };
        let add = check_change(&reg, ok, chrono::Utc::now()).map(|a| a.regions.len()).ok();
        assert_eq!(add, Some(2));
        let orphan = pb::RegistryChange { regions: vec![region("370300", "370000", 2)], ..Default::default() };
        assert!(matches!(check_change(&reg, orphan, chrono::Utc::now()), Err(AppError::NotFound(_))));
        let upside_down = pb::RegistryChange {
            regions: vec![region("370000", "", 2), region("370300", "370000", 1)],
            ..Default::default()
        };
        assert!(matches!(check_change(&reg, upside_down, chrono::Utc::now()), Err(AppError::Invalid(_))));
    }

    /// A registry change whose caller goes away once the change is queued behind a busy writer still ends with
    /// the running registry showing it, and with the registry lock free for the next change.
    #[tokio::test]
    async fn a_registry_change_runs_to_its_end_when_its_caller_goes_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, operator) = (app_with(dir.path(), super::super::AppConfig::default()), operator());
        let change = pb::RegistryChange {
            request_id: "regions".into(),
            regions: vec![region("370000", "", 1)],
            ..Default::default()
        };
        let env = operator.envelope(&change);
        dropped_while_queued(&app, |app| async move { app.apply_registry_change(env).await }).await;
        assert!(app.snapshot().registry.regions.contains_key("370000"), "the running registry shows the region");

        let unit = pb::Unit {
            id: "370000.czt".into(),
            full_name: "山东省财政厅".into(),
            short_name: "鲁财".into(),
            region_code: "370000".into(),
            level: 1,
            kind: 1,
            ..Default::default()
        };
        let units = pb::RegistryChange { request_id: "units".into(), units: vec![unit], ..Default::default() };
        app.apply_registry_change(operator.envelope(&units)).await.expect("the unit");
        let key = crate::signing::Signer::from_secret("czt#1", [2; 32]);
        let keys = pb::ChangeUnitKeys {
            request_id: "keys".into(),
            unit_id: "370000.czt".into(),
            add_keys: vec![key.seal_key()],
            ..Default::default()
        };
        let env = operator.envelope(&keys);
        dropped_while_queued(&app, |app| async move { app.change_unit_keys(env).await }).await;
        let shown = app.snapshot().registry.units.get("370000.czt").map(|u| u.keys.len());
        assert_eq!(shown, Some(1), "the running registry shows the new key");
    }

    /// Holds the writer, runs `change` until it holds the registry lock (it has then queued its write), drops it,
    /// frees the writer, and waits for the lock to be free again.
    async fn dropped_while_queued<F, T>(app: &Arc<App>, change: impl FnOnce(Arc<App>) -> F)
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let writer = app.clone();
        let busy = tokio::spawn(async move {
            writer
                .write(move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        tokio::task::spawn_blocking(move || running.recv()).await.expect("joined").expect("the writer is busy");
        let call = tokio::spawn(change(app.clone()));
        until("the change holding the registry lock", || app.registry_lock.try_lock().is_err()).await;
        call.abort();
        assert!(call.await.is_err_and(|e| e.is_cancelled()), "the caller went away before the change ended");
        release.send(()).expect("the writer is waiting");
        busy.await.expect("joined").expect("the busy write");
        until("the change's end", || app.registry_lock.try_lock().is_ok()).await;
    }
}
