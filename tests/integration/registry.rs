//! Registry RPCs: reads, filters, paging, idempotent loading and number baselines.
use crate::common;

use common::*;
use gongwen::pb;
use tonic::Code;

fn units_req(
    region: &str,
    level: pb::Level,
    kind: pb::UnitKind,
    tag: &str,
    size: u32,
    token: &str,
) -> pb::ListUnitsRequest {
    pb::ListUnitsRequest {
        region_subtree: region.into(),
        level: level as i32,
        kind: kind as i32,
        tag: tag.into(),
        page: Some(pb::PageRequest { page_size: size, page_token: token.into() }),
    }
}

#[tokio::test]
async fn reads_filters_and_paging() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.operator_key_id, h.operator.key_id);
    assert_eq!(info.operator_public_key, h.operator.public_key().to_vec());

    let list = |req| async { h.registry().list_units(req).await.expect("list").into_inner().units };
    let zibo_bureaus = list(units_req("370300", pb::Level::County, pb::UnitKind::FinanceBureau, "", 0, "")).await;
    assert_eq!(zibo_bureaus.len(), 8 + 3);
    assert!(zibo_bureaus.iter().all(|u| u.region_code.starts_with("3703")));
    let zones = list(units_req("", pb::Level::Unspecified, pb::UnitKind::Unspecified, "功能区财政局", 0, "")).await;
    assert_eq!(zones.len(), 3);
    let cities = list(units_req("370000", pb::Level::City, pb::UnitKind::FinanceBureau, "", 0, "")).await;
    assert_eq!(cities.len(), 16);

    let mut seen = vec![];
    let mut token = String::new();
    loop {
        let page = h
            .registry()
            .list_units(units_req("370304", pb::Level::Unspecified, pb::UnitKind::Unspecified, "", 4, &token))
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.units.into_iter().map(|u| u.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in id order, no duplicates");
    assert_eq!(seen.len(), 1 + 5 + 1 + 10, "Boshan's bureau, departments, zone bureau and township offices");

    let unit = h.registry().get_unit(pb::GetUnitRequest { id: BOSHAN.into() }).await.expect("unit").into_inner();
    assert_eq!(unit.full_name, "淄博市博山区财政局");
    assert_eq!(unit.number_prefixes, vec!["博财采".to_string()]);
    assert_eq!(unit.seal_keys.len(), 1);
    let region =
        h.registry().get_region(pb::GetRegionRequest { code: "370304".into() }).await.expect("region").into_inner();
    assert_eq!(region.parent_code, "370300");
    let sub = h
        .registry()
        .list_regions(pb::ListRegionsRequest { subtree_of: "370300".into() })
        .await
        .expect("regions")
        .into_inner();
    assert_eq!(sub.regions.len(), 1 + 8 + 10);
    let groups = h.registry().list_groups(pb::ListGroupsRequest {}).await.expect("groups").into_inner();
    assert!(groups.groups.iter().any(|g| g.name == "各镇(街道)财政所"));
    let expanded = h
        .registry()
        .expand_group(pb::ExpandGroupRequest { group: "各市财政局".into(), issuer_unit_id: PROVINCE.into() })
        .await
        .expect("expand")
        .into_inner();
    assert_eq!(expanded.units.len(), 16);

    refused(
        &h,
        Code::NotFound,
        h.registry().list_units(units_req("999900", pb::Level::Unspecified, pb::UnitKind::Unspecified, "", 0, "")),
    )
    .await;
    refused(&h, Code::NotFound, h.registry().list_regions(pb::ListRegionsRequest { subtree_of: "999900".into() }))
        .await;
    refused(
        &h,
        Code::NotFound,
        h.registry()
            .expand_group(pb::ExpandGroupRequest { group: "各省财政厅".into(), issuer_unit_id: PROVINCE.into() }),
    )
    .await;
    let mut bad_level = units_req("", pb::Level::Unspecified, pb::UnitKind::Unspecified, "", 0, "");
    bad_level.level = 77;
    refused(&h, Code::InvalidArgument, h.registry().list_units(bad_level)).await;
}

#[tokio::test]
async fn loading_twice_creates_nothing_and_changes_are_refused() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    // The same content under a new request id: accepted, nothing new, no event.
    let file = gongwen::registry_file::bundled().expect("bundled");
    let mut change = pb::RegistryChange { request_id: "load-again".into(), ..Default::default() };
    change.regions = file.regions.into_iter().map(Into::into).collect();
    for u in file.units {
        let mut wire: pb::Unit = u.into();
        wire.seal_keys = vec![h.signer(&wire.id).seal_key()];
        change.units.push(wire);
    }
    change.groups = file.groups.into_iter().map(Into::into).collect();
    let before = h.digest().await;
    let again = h.apply(change.clone()).await.expect("idempotent load");
    assert_eq!((again.regions_created, again.units_created, again.groups_created, again.event_seq), (0, 0, 0, 0));
    // Only the request id is remembered.
    assert_ne!(before, h.digest().await);

    let mut renamed = change.clone();
    renamed.request_id = "rename".into();
    renamed.units.retain(|u| u.id == BOSHAN);
    renamed.units[0].full_name = "博山区财政局（改）".into();
    renamed.regions.clear();
    refused(&h, Code::AlreadyExists, h.apply(renamed)).await;
}

#[tokio::test]
async fn number_baselines_only_move_forward() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let b = |rid: &str, last| pb::RegistryChange {
        request_id: rid.into(),
        number_baselines: vec![pb::NumberBaseline { prefix: "博财采".into(), year: 2022, last_serial: last }],
        ..Default::default()
    };
    assert_eq!(h.apply(b("b1", 18)).await.expect("set").baselines_set, 1);
    let doc = h
        .issue(BOSHAN, "d", draft("博财采", "博山区财政局关于测试的通知", vec![group("区直各部门、单位")]))
        .await
        .expect("issue");
    assert_eq!(doc.number, "博财采〔2022〕19号");
    refused(&h, Code::FailedPrecondition, h.apply(b("b2", 10))).await;
    assert_eq!(h.apply(b("b3", 19)).await.expect("same as now").baselines_set, 0);
    let unknown = pb::RegistryChange {
        request_id: "b4".into(),
        number_baselines: vec![pb::NumberBaseline { prefix: "无主采".into(), year: 2022, last_serial: 3 }],
        ..Default::default()
    };
    refused(&h, Code::NotFound, h.apply(unknown)).await;
}

/// The registry is kept in a file between runs (`app::registry_cache`), so a start need not read every unit
/// record: a start uses the file while it holds the store's state, and reads the store when it does not.
#[tokio::test]
async fn a_start_uses_the_registry_file_only_while_it_is_the_store_s() {
    use gongwen::app::registry_cache::{RegistryFile, Stamp};
    use gongwen::store::SledStore;

    // Writes a registry file with the store's stamp and another name for Boshan (the server stopped).
    fn doctor(data: &std::path::Path) {
        let store = SledStore::open(&data.join("db"), 8 << 20).expect("store");
        let mut registry = gongwen::app::registry::load(&store).expect("registry");
        registry.units.get_mut(BOSHAN).expect("Boshan").full_name = "改过的名称".into();
        let stamp = Stamp::of(&store).expect("stamp");
        RegistryFile::in_dir(data).write(&registry, stamp).expect("write");
    }

    let mut h = Harness::start().await;
    h.load_bundled().await;
    let name = |h: &Harness| {
        let mut registry = h.registry();
        async move {
            let req = pb::GetUnitRequest { id: BOSHAN.into() };
            registry.get_unit(req).await.expect("unit").into_inner().full_name
        }
    };
    h.stop().await;
    {
        // The first start kept the empty registry; the stop keeps the one the bundled registry made.
        let store = SledStore::open(&h.data_dir().join("db"), 8 << 20).expect("store");
        let kept = RegistryFile::in_dir(&h.data_dir()).read(Stamp::of(&store).expect("stamp"));
        assert_eq!(kept, Some(gongwen::app::registry::load(&store).expect("registry")), "a clean stop keeps it");
    }
    h.restart().await;
    let path = h.data_dir().join("registry.cache");
    assert_eq!(name(&h).await, "淄博市博山区财政局");

    // A file stamped with the store's state is what a start reads: one written with another name for Boshan shows.
    h.stop().await;
    doctor(&h.data_dir());
    let doctored = std::fs::read(&path).expect("file");
    h.restart().await;
    assert_eq!(name(&h).await, "改过的名称", "the file was read");

    // After a registry change the same file is stale: the start reads the store, and keeps what it read.
    let b = pb::NumberBaseline { prefix: "博财采".into(), year: 2022, last_serial: 18 };
    let change = pb::RegistryChange { request_id: "baseline".into(), number_baselines: vec![b], ..Default::default() };
    assert!(h.apply(change).await.expect("baseline").event_seq > 0);
    h.stop().await;
    std::fs::write(&path, &doctored).expect("the stale file back");
    h.restart().await;
    assert_eq!(name(&h).await, "淄博市博山区财政局", "a stale file is not read");
    // It is written in the background: polled, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read(&path).expect("file") == doctored {
        assert!(std::time::Instant::now() < deadline, "the start did not keep the registry it read");
        tokio::task::yield_now().await;
    }

    // Nor is a damaged one, though its stamp is the store's.
    h.stop().await;
    doctor(&h.data_dir());
    let mut damaged = std::fs::read(&path).expect("file");
    let (from, to) = ("改过的名称".as_bytes(), "改过的名字".as_bytes());
    let at = damaged.windows(from.len()).position(|w| w == from).expect("the name in the file");
    damaged[at..at + to.len()].copy_from_slice(to);
    std::fs::write(&path, &damaged).expect("damaged");
    h.restart().await;
    assert_eq!(name(&h).await, "淄博市博山区财政局", "a damaged file is not read");
}
