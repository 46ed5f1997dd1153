//! Supervision through the real server with a set clock: exact matrix figures for a mixed chain, overdue lists,
//! unit views, and CSV / .xlsx exports that a reader library opens with the same figures.
use crate::common;

use std::io::Cursor;
use std::sync::Arc;

use calamine::{DataType, Reader, Xlsx};
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use gongwen::app::ManualClock;
use gongwen::pb;
use tonic::Code;

fn cst(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .and_then(|o| o.with_ymd_and_hms(y, m, d, h, 0, 0).single())
        .map(|t| t.with_timezone(&Utc))
        .expect("a valid time")
}

/// The corpus chain with deadlines, and a mix of what recipients did, as of early December 2022.
async fn mixed_chain(h: &mut Harness) -> (pb::Document, pb::Document) {
    h.load_bundled().await;
    let mut d = draft(
        "鲁财采",
        "山东省财政厅关于做好政府购买服务改革重点工作的通知",
        vec![group("各市财政局"), group("省直各部门、单位")],
    );
    d.deadline = "2022-11-30".into();
    let province = h.issue(PROVINCE, "p", d).await.expect("issue");
    assert_eq!(province.main_unit_ids.len(), 27);
    h.ack(ZIBO, &province.id).await.expect("ack");
    let mut z = forward_draft("淄财采", vec![group("各区县财政局")]);
    z.deadline = "2022-12-31".into();
    let city = h.forward(ZIBO, "z", &province.id, z).await.expect("forward");
    h.ack(BOSHAN, &city.id).await.expect("ack");
    let mut b = forward_draft("博财采", vec![group("各镇(街道)财政所")]);
    b.deadline = "2023-01-15".into();
    h.forward(BOSHAN, "b", &city.id, b).await.expect("forward");

    let doc = province.id.clone();
    for u in ["370000.mzt", "370000.jyt", "370100.czj"] {
        h.ack(u, &doc).await.expect("ack");
    }
    h.report("370000.mzt", &doc).await.expect("report");
    h.report("370000.jyt", &doc).await.expect("report");
    h.complete("370000.mzt", &doc).await.expect("complete");
    h.return_delivery("370000.sjt", &doc).await.expect("return");
    h.ack("370303.czj", &city.id).await.expect("ack");
    h.start_handling("370303.czj", &city.id).await.expect("start handling");
    (province, city)
}

fn figures(r: &pb::MatrixRow) -> [u32; 7] {
    [r.delivered, r.acknowledged, r.forwarded, r.reported, r.completed, r.returned, r.overdue]
}

#[tokio::test]
async fn matrix_overdue_and_unit_views_give_exact_figures() {
    let clock = Arc::new(ManualClock::new(cst(2022, 8, 16, 9)));
    let mut h = Harness::start_with_clock(clock.clone()).await;
    let (province, city) = mixed_chain(&mut h).await;
    clock.set(cst(2022, 12, 5, 12));

    let m = h
        .supervision()
        .status_matrix(pb::MatrixRequest { document_id: province.id.clone(), with_units: true })
        .await
        .expect("matrix")
        .into_inner();
    let by_level: Vec<(String, [u32; 7])> = m.by_level.iter().map(|r| (r.key.clone(), figures(r))).collect();
    assert_eq!(
        by_level,
        vec![
            ("省级".to_string(), [11, 2, 0, 2, 1, 1, 9]),
            ("市级".to_string(), [16, 2, 1, 0, 0, 0, 16]),
            ("县级".to_string(), [8, 2, 1, 0, 0, 0, 0]),
            ("乡级".to_string(), [10, 0, 0, 0, 0, 0, 0]),
        ]
    );
    let total = m.total.expect("total");
    assert_eq!(figures(&total), [45, 6, 2, 2, 1, 1, 25]);
    let units = total.units.expect("units behind the numbers");
    assert_eq!(units.returned, vec!["370000.sjt".to_string()]);
    assert_eq!(units.completed, vec!["370000.mzt".to_string()]);
    assert_eq!(m.by_region.iter().map(|r| r.delivered).sum::<u32>(), 45);
    let boshan_row = m.by_region.iter().find(|r| r.key == "370304").expect("Boshan row");
    assert_eq!((boshan_row.label.as_str(), boshan_row.delivered, boshan_row.forwarded), ("淄博市博山区", 1, 1));

    let overdue = h
        .supervision()
        .list_overdue(pb::OverdueRequest {
            scope: Some(pb::overdue_request::Scope::DocumentId(province.id.clone())),
            order: 0,
        })
        .await
        .expect("overdue")
        .into_inner();
    assert_eq!(overdue.items.len(), 25);
    assert!(overdue.items.iter().all(|i| i.days_late == 5 && i.deadline == "2022-11-30"), "{:?}", overdue.items[0]);

    // A month later the districts' deadline has passed too.
    clock.set(cst(2023, 1, 1, 12));
    let in_zibo = h
        .supervision()
        .list_overdue(pb::OverdueRequest {
            scope: Some(pb::overdue_request::Scope::RegionCode("370300".into())),
            order: 0,
        })
        .await
        .expect("overdue")
        .into_inner();
    let found: Vec<(String, u32)> = in_zibo.items.iter().map(|i| (i.unit_id.clone(), i.days_late)).collect();
    assert_eq!(found.len(), 9, "{found:?}");
    assert_eq!(found[0], (ZIBO.to_string(), 32), "most days late first");
    assert!(found[1..].iter().all(|(_, d)| *d == 1));
    let ascending = h
        .supervision()
        .list_overdue(pb::OverdueRequest {
            scope: Some(pb::overdue_request::Scope::RegionCode("370300".into())),
            order: pb::OverdueOrder::DaysLateAsc as i32,
        })
        .await
        .expect("overdue")
        .into_inner();
    assert_eq!(ascending.items.last().map(|i| i.unit_id.as_str()), Some(ZIBO));

    let view =
        h.supervision().unit_view(pb::UnitViewRequest { unit_id: ZIBO.into() }).await.expect("view").into_inner();
    assert_eq!(view.open_received.len(), 1);
    assert_eq!(view.open_received[0].document_id, province.id);
    assert_eq!(view.issued.len(), 1);
    assert_eq!(view.issued[0].document_id, city.id);
    assert_eq!(view.issued[0].recipients, 8);
    assert_eq!(view.issued[0].not_acted_unit_ids.len(), 6, "Boshan forwarded, Zhangdian is handling");

    refused(
        &h,
        Code::NotFound,
        h.supervision().status_matrix(pb::MatrixRequest { document_id: "d-none".into(), with_units: false }),
    )
    .await;
    refused(
        &h,
        Code::NotFound,
        h.supervision().list_overdue(pb::OverdueRequest {
            scope: Some(pb::overdue_request::Scope::RegionCode("999999".into())),
            order: 0,
        }),
    )
    .await;
    refused(&h, Code::InvalidArgument, h.supervision().list_overdue(pb::OverdueRequest { scope: None, order: 0 }))
        .await;
    refused(&h, Code::NotFound, h.supervision().unit_view(pb::UnitViewRequest { unit_id: "nobody".into() })).await;
}

#[tokio::test]
async fn exports_open_with_a_reader_and_hold_the_same_figures() {
    let clock = Arc::new(ManualClock::new(cst(2022, 8, 16, 9)));
    let mut h = Harness::start_with_clock(clock.clone()).await;
    let (province, _) = mixed_chain(&mut h).await;
    clock.set(cst(2022, 12, 5, 12));
    let file = |kind: pb::ReportKind, format: pb::ReportFormat| pb::ReportRequest {
        kind: kind as i32,
        format: format as i32,
        document_id: province.id.clone(),
        region_code: String::new(),
    };

    let csv = h
        .supervision()
        .export_report(file(pb::ReportKind::Matrix, pb::ReportFormat::Csv))
        .await
        .expect("csv")
        .into_inner();
    assert!(csv.file_name.ends_with(".csv"));
    let text = String::from_utf8(csv.content).expect("utf-8");
    let mut rdr = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = rdr.headers().expect("headers").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        ["分组", "名称", "送达", "已签收", "已转发", "已报送", "已办结", "已退回", "逾期"]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).collect();
    let total = rows.last().expect("total row");
    assert_eq!(total.iter().collect::<Vec<_>>(), ["合计", "合计", "45", "6", "2", "2", "1", "1", "25"]);
    let province_row = rows.iter().find(|r| r.get(1) == Some("省级")).expect("省级 row");
    assert_eq!(&province_row.iter().skip(2).collect::<Vec<_>>(), &["11", "2", "0", "2", "1", "1", "9"]);

    let xlsx = h
        .supervision()
        .export_report(file(pb::ReportKind::Matrix, pb::ReportFormat::Xlsx))
        .await
        .expect("xlsx")
        .into_inner();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(xlsx.content)).expect("a workbook");
    let sheet = book.worksheet_range_at(0).expect("a sheet").expect("readable");
    let cells: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(cells[0][0], "分组");
    let last = cells.last().expect("total row");
    assert_eq!(last[2..].to_vec(), ["45", "6", "2", "2", "1", "1", "25"]);

    let trace = h
        .supervision()
        .export_report(file(pb::ReportKind::Trace, pb::ReportFormat::Xlsx))
        .await
        .expect("trace")
        .into_inner();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(trace.content)).expect("a workbook");
    let sheet = book.worksheet_range_at(0).expect("a sheet").expect("readable");
    assert_eq!(sheet.height(), 1 + 45);
    // Delivered-at is a real date cell in China Standard Time.
    let delivered = sheet.get((1, 6)).expect("a delivered-at cell");
    assert!(delivered.is_datetime(), "{delivered:?}");

    let overdue = h
        .supervision()
        .export_report(file(pb::ReportKind::Overdue, pb::ReportFormat::Csv))
        .await
        .expect("overdue")
        .into_inner();
    let text = String::from_utf8(overdue.content).expect("utf-8");
    assert_eq!(text.lines().count(), 1 + 25);
    assert!(text.contains(&format!("{},", province.number)), "{}", &text[..text.len().min(400)]);

    refused(
        &h,
        Code::InvalidArgument,
        h.supervision()
            .export_report(pb::ReportRequest { kind: 0, ..file(pb::ReportKind::Trace, pb::ReportFormat::Csv) }),
    )
    .await;
}
