//! The parser against the corpus document and hand-written variants.
use chrono::NaiveDate;
use proptest::prelude::*;

use super::render::{Fields, render};
use super::*;

const CORPUS: &str = include_str!("../../tests/fixtures/forwarding-chain-lu-zi-bo-2022.txt");
const PROVINCE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
const CITY: &str = "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知";
const DISTRICT: &str =
    "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》的通知";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

fn v<T: Clone>(f: &Option<Found<T>>) -> Option<T> {
    f.as_ref().map(|f| f.value.clone())
}

#[test]
fn the_corpus_chain_reads_exactly() {
    let p = parse_text(CORPUS);
    assert_eq!(p.documents.len(), 3, "{:#?}", p.warnings);
    let [district, city, province] = [&p.documents[0], &p.documents[1], &p.documents[2]];

    assert_eq!(v(&district.number).as_deref(), Some("博财采〔2022〕19号"));
    assert_eq!(v(&city.number).as_deref(), Some("淄财采〔2022〕20号"));
    assert_eq!(v(&province.number).as_deref(), Some("鲁财采〔2022〕14号"));
    assert_eq!(v(&district.title).as_deref(), Some(DISTRICT));
    assert_eq!(v(&city.title).as_deref(), Some(CITY));
    assert_eq!(v(&province.title).as_deref(), Some(PROVINCE));
    assert_eq!(v(&district.issuer).as_deref(), Some("淄博市博山区财政局"));
    assert_eq!(v(&city.issuer).as_deref(), Some("淄博市财政局"));
    assert_eq!(v(&province.issuer).as_deref(), Some("山东省财政厅"));
    assert_eq!(district.title.as_ref().map(|t| (t.first_line, t.last_line)), Some((7, 7)));

    let strs = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(v(&district.main_recipients), Some(strs(&["区直各部门、单位", "各镇(街道)财政所", "开发区财政审计局"])));
    assert_eq!(
        v(&city.main_recipients),
        Some(strs(&["各区县财政局", "高新区、经开区、文昌湖区财政局", "市直各部门、单位"]))
    );
    assert_eq!(v(&province.main_recipients), Some(strs(&["各市财政局", "省直各部门、单位"])));

    assert_eq!(v(&district.dated), Some(d(2022, 12, 22)));
    assert_eq!(v(&district.signature), Some(strs(&["淄博市博山区财政局"])));
    assert_eq!(v(&city.printed_on), Some(d(2022, 12, 20)));
    assert_eq!(v(&city.printed_by).as_deref(), Some("淄博市财政局办公室"));
    assert_eq!(v(&province.printed_on), Some(d(2022, 8, 16)));
    assert_eq!(v(&province.printed_by).as_deref(), Some("山东省财政厅办公室"));
    assert_eq!(v(&province.disclosure).as_deref(), Some("主动公开"));
    assert_eq!(v(&city.disclosure).as_deref(), Some("主动公开"));
    assert_eq!(district.disclosure, None);
    assert_eq!(v(&province.contact).as_deref(), Some("王高文 0531-51769834"));

    let titles = |doc: &ParsedDocument| doc.attachments.iter().map(|a| a.value.title.clone()).collect::<Vec<_>>();
    assert_eq!(
        titles(district),
        strs(&[
            "淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》（淄财采〔2022〕20号）"
        ])
    );
    assert_eq!(titles(city), strs(&["《山东省财政厅关于做好政府购买服务改革重点工作的通知》"]));
    assert_eq!(titles(province), strs(&["山东省政府购买服务改革联系点名单"]));
    assert_eq!(province.attached.len(), 1);
    assert_eq!(province.attached[0].value.title, "山东省政府购买服务改革联系点名单");
    assert!(province.attached[0].value.text.contains("淄博市\t张店区"));

    assert_eq!((district.forwards, city.forwards, province.forwards), (Some(1), Some(2), None));
    let body = v(&province.body).unwrap_or_default();
    assert!(body.contains("等社会力量承担"), "a page break inside a paragraph is mended");
    assert!(body.starts_with("为推进我省政府购买服务改革"));
    assert!(body.contains("\n一、充分认识推进政府购买服务改革的重要性\n"), "headings stay paragraphs");
    // The district's 版记 is not in the text: said, not guessed.
    assert!(p.warnings.iter().all(|w| !w.message.contains("forwarding title")), "{:#?}", p.warnings);
}

#[test]
fn a_wrong_forwarding_title_is_a_warning() {
    let text = CORPUS.replace("关于转发《山东省财政厅关于做好", "关于转发《山东省财政局关于做好");
    let p = parse_text(&text);
    assert!(
        p.warnings.iter().any(|w| w.document == Some(1) && w.message.contains("is not the forwarding title")),
        "{:#?}",
        p.warnings
    );
}

#[test]
fn variants_of_brackets_digits_breaks_and_numerals() {
    let text = "山东省财政厅文件\n鲁财采【２０２２】１４号\n山东省财政厅关于做好政府购买服务\n改革重点工作的通知\n\
                各市财政局，\n省直各部门、单位：\n正文第一段，没有\n\n写完。\n附件：1. 名单一\n2. 名单二\n\
                山东省财政厅\n二〇二二年八月十六日\n（此件主动公开）\n";
    let p = parse_text(text);
    let doc = &p.documents[0];
    assert_eq!(v(&doc.number).as_deref(), Some("鲁财采〔2022〕14号"));
    assert_eq!(v(&doc.title).as_deref(), Some(PROVINCE));
    assert_eq!(v(&doc.main_recipients), Some(vec!["各市财政局".to_string(), "省直各部门、单位".into()]));
    assert_eq!(v(&doc.body).as_deref(), Some("正文第一段，没有写完。"));
    assert_eq!(doc.attachments.len(), 2);
    assert_eq!(doc.attachments[1].value, AttachmentItem { ordinal: 2, title: "名单二".into() });
    assert_eq!(v(&doc.dated), Some(d(2022, 8, 16)));
    assert_eq!(v(&doc.note).as_deref(), Some("此件主动公开"));
    assert_eq!(doc.title.as_ref().map(|t| (t.first_line, t.last_line)), Some((3, 4)));
}

#[test]
fn no_banner_and_crlf_line_ends() {
    let text = "博财采(2022)19号\r\n关于转发某文件的通知\r\n区直各部门：\r\n请遵照执行。\r\n淄博市博山区财政局\r\n2022年12月22日\r\n";
    let p = parse_text(text);
    let doc = &p.documents[0];
    assert_eq!(doc.banner, None);
    assert_eq!(v(&doc.number).as_deref(), Some("博财采〔2022〕19号"));
    assert_eq!(v(&doc.issuer).as_deref(), Some("淄博市博山区财政局"), "the issuer comes from the signature");
    assert_eq!(v(&doc.title).as_deref(), Some("关于转发某文件的通知"));
}

#[test]
fn a_truncated_file_gives_warnings_not_a_crash() {
    for cut in [10, 200, 700, 1500, CORPUS.len() / 2] {
        let end = (0..=cut.min(CORPUS.len())).rev().find(|i| CORPUS.is_char_boundary(*i)).unwrap_or(0);
        let p = parse_text(&CORPUS[..end]);
        assert!(!p.warnings.is_empty(), "cut at {end}");
    }
    assert_eq!(parse_text("").documents.len(), 0);
    assert_eq!(parse_text("\n\n   \n").warnings.len(), 1);
}

#[test]
fn a_depth_four_chain_links_outermost_first() {
    let levels = [
        ("国务院办公厅", "国办发", "国务院办公厅关于某事的通知"),
        ("山东省人民政府办公厅", "鲁政办发", ""),
        ("淄博市人民政府办公室", "淄政办发", ""),
        ("淄博市博山区人民政府办公室", "博政办发", ""),
    ];
    let mut titles = vec![levels[0].2.to_string()];
    for k in 1..4 {
        let prev = &titles[k - 1];
        titles.push(crate::domain::title::forwarding_title(prev, levels[k - 1].0));
    }
    let mut text = String::new();
    for k in (0..4).rev() {
        let (issuer, prefix, _) = levels[k];
        text.push_str(&format!(
            "{issuer}文件\n\n{prefix}〔2023〕{}号\n\n{}\n\n各单位：\n\n请遵照执行。\n\n",
            k + 1,
            titles[k]
        ));
        if k > 0 {
            text.push_str(&format!("附件：{}\n\n", titles[k - 1]));
        }
        text.push_str(&format!("{issuer}\n\n2023年1月{}日\n\n", 10 + k));
    }
    let p = parse_text(&text);
    assert_eq!(p.documents.len(), 4, "{:#?}", p.warnings);
    for (i, doc) in p.documents.iter().enumerate() {
        assert_eq!(v(&doc.title), Some(titles[3 - i].clone()));
        assert_eq!(doc.forwards, (i < 3).then_some(i + 1));
    }
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}

fn cjk(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::char::range('\u{4e00}', '\u{4fff}'), min..max)
        .prop_map(|c| c.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn printed_fields_parse_back(
        issuer in cjk(3, 10),
        prefix in cjk(2, 4),
        year in 2000u32..2030,
        serial in 1u32..999,
        subject in cjk(4, 20),
        recipients in proptest::collection::vec(cjk(2, 8), 1..4),
        body in proptest::collection::vec(cjk(5, 40), 1..4),
        attachments in proptest::collection::vec(cjk(3, 12), 0..3),
        day in 1u32..28,
        month in 1u32..13,
        contact in proptest::option::of(cjk(2, 4)),
    ) {
        let f = Fields {
            issuer: format!("{issuer}局"),
            number: format!("{prefix}〔{year}〕{serial}号"),
            title: format!("关于{subject}的通知"),
            main_recipients: recipients,
            body: body.into_iter().map(|p| format!("{p}。")).collect(),
            contact: contact.map(|c| format!("{c} 0533-1234567")),
            attachments,
            dated: NaiveDate::from_ymd_opt(i32::try_from(year).unwrap_or(2022), month, day),
            disclosure: Some("主动公开".into()),
            cc: vec![],
            printed_by: Some(format!("{issuer}局办公室")),
            printed_on: NaiveDate::from_ymd_opt(i32::try_from(year).unwrap_or(2022), month, day),
        };
        let p = parse_text(&render(&f));
        prop_assert_eq!(p.documents.len(), 1);
        let doc = &p.documents[0];
        prop_assert_eq!(v(&doc.issuer), Some(f.issuer.clone()));
        prop_assert_eq!(v(&doc.number), Some(f.number.clone()));
        prop_assert_eq!(v(&doc.title), Some(f.title.clone()));
        prop_assert_eq!(v(&doc.main_recipients), Some(f.main_recipients.clone()));
        prop_assert_eq!(v(&doc.body), Some(f.body.join("\n")));
        prop_assert_eq!(v(&doc.contact), f.contact.clone());
        let listed: Vec<String> = doc.attachments.iter().map(|a| a.value.title.clone()).collect();
        prop_assert_eq!(listed, f.attachments.clone());
        prop_assert_eq!(v(&doc.dated), f.dated);
        prop_assert_eq!(v(&doc.disclosure), f.disclosure.clone());
        prop_assert_eq!(v(&doc.printed_by), f.printed_by.clone());
        prop_assert_eq!(v(&doc.printed_on), f.printed_on);
    }
}
