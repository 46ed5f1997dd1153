//! Property: a chain of documents printed from structured fields (in any of the layouts real sources show) parses
//! back to the same fields, with the same links and no warnings.
use chrono::NaiveDate;
use gongwen::domain::model::Disclosure;
use gongwen::domain::number::DocNumber;
use gongwen::domain::title::{forwarding_title, quoted_title};
use gongwen::parse::render::{Style, render_with};
use gongwen::parse::{Annex, AttachmentItem, Contact, Found, Parsed, ParsedDocument, Recipients, parse_text};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

const UNITS: [(&str, &str); 7] = [
    ("山东省财政厅", "鲁财采"),
    ("淄博市财政局", "淄财采"),
    ("淄博市博山区财政局", "博财采"),
    ("济南市财政局", "济财采"),
    ("山东省民政厅", "鲁民"),
    ("青岛市人民政府办公厅", "青政办"),
    ("淄博市博山区城东街道办事处", "城东办发"),
];
const TOPICS: [&str; 5] = [
    "做好政府购买服务改革重点工作",
    "加强预算绩效管理",
    "开展2023年度政府采购监督检查",
    "规范政府采购合同管理",
    "进一步加强财会监督工作",
];
const GENRES: [&str; 5] = ["通知", "意见", "通报", "决定", "函"];
const RECIPIENTS: [&str; 7] = [
    "各市财政局",
    "省直各部门、单位",
    "各区县财政局",
    "高新区、经开区、文昌湖区财政局",
    "各镇(街道)财政所",
    "开发区财政审计局",
    "各县（市、区）财政局",
];
const PARAGRAPHS: [&str; 7] = [
    "为推进政府购买服务改革，规范政府购买服务管理，现就有关工作通知如下：",
    "一、总体要求",
    "各单位要高度重视，结合实际，细化措施，压实责任。",
    "（一）加强目录管理。政府购买服务实行目录管理制。",
    "请于11月30日前向省财政厅（政府采购监督管理处）报送工作进展情况。",
    "二、工作措施",
    "根据《政府购买服务管理办法》（财政部令第102号），结合我省实际，制定本方案。",
];
const ANNEX_TITLES: [&str; 3] = ["山东省政府购买服务改革联系点名单", "政府购买服务项目预算表", "2023年度工作安排"];
const ROWS: [&str; 4] =
    ["地级市\t联系点", "济南市\t市中区", "项目名称\t金额（万元）", "第一条　为规范管理，制定本办法。"];
const CC: [&str; 4] = ["省委办公厅", "省人大常委会办公厅", "区委办公室", "财政部山东监管局"];

const LINE_KINDS: [&str; 24] = [
    "",
    "000123",
    "特急",
    "山东省财政厅文件",
    "文件",
    "山东省财政厅",
    "鲁财采〔2022〕14号",
    "鲁财采〔22〕14号  签发人：张三",
    "签发人：李四",
    "关于转发《山东省财政厅关于做好工作的通知》的通知",
    "各市财政局：",
    "正文第一段。",
    "一、总体要求",
    "附件：1. 名单",
    "2. 预算表",
    "附件",
    "附件2",
    "2022年8月16日",
    "二〇二二年二月三十日",
    "（此件公开发布）",
    "联系人：张三 0531-1234567",
    "信息公开选项：主动公开",
    "抄送：省委办公厅，",
    "山东省财政厅办公室 2022年8月16日印发",
];

fn found<T>(value: T) -> Option<Found<T>> {
    Some(Found { value, lines: (0, 0) })
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (2000i32..2031, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default())
}

/// 版记: disclosure option, cc list, printing date (the printing office is the issuer's 办公室).
type Trailer = (Option<Disclosure>, Option<Vec<&'static str>>, NaiveDate);

/// A document's own fields (its title and attachments depend on its place in the chain).
#[derive(Debug, Clone)]
struct Own {
    year: i32,
    serial: u32,
    copy_number: bool,
    urgency: Option<&'static str>,
    signers: Option<Vec<&'static str>>,
    recipients: Vec<&'static str>,
    body: Vec<&'static str>,
    contact: Option<(&'static str, &'static str)>,
    dated: NaiveDate,
    note: Option<&'static str>,
    trailer: Option<Trailer>,
}

fn own() -> impl Strategy<Value = Own> {
    let disclosure = prop::option::of(select(vec![Disclosure::Public, Disclosure::OnRequest, Disclosure::NotPublic]));
    (
        (2000i32..2031, 1u32..1000, any::<bool>(), prop::option::of(select(vec!["特急", "加急"]))),
        prop::option::of(subsequence(vec!["张伟", "李娜"], 1..=2)),
        subsequence(RECIPIENTS.to_vec(), 1..=4),
        prop::collection::vec(select(PARAGRAPHS.to_vec()), 1..6),
        prop::option::of((select(vec!["王高文", "李娜"]), select(vec!["0531-51769834", "13800138000"]))),
        (date(), prop::option::of(select(vec!["此件公开发布", "此件不公开发布"]))),
        prop::option::of((disclosure, prop::option::of(subsequence(CC.to_vec(), 1..=3)), date())),
    )
        .prop_map(
            |((year, serial, copy_number, urgency), signers, recipients, body, contact, (dated, note), trailer)| Own {
                year,
                serial,
                copy_number,
                urgency,
                signers,
                recipients,
                body,
                contact,
                dated,
                note,
                trailer,
            },
        )
}

fn style() -> impl Strategy<Value = Style> {
    let brackets = select(vec![('〔', '〕'), ('[', ']'), ('【', '】'), ('（', '）'), ('(', ')')]);
    // Cuts from the first character on: a title's first line of 2 to 4 characters under a full row of two signers
    // looks like a further row of signers, and must still read as the title.
    (any::<[bool; 5]>(), brackets, prop::option::of(1usize..40)).prop_map(|(b, brackets, title_break)| Style {
        blank_lines: b[0],
        chinese_dates: b[1],
        brackets,
        full_width_digits: b[2],
        page_numbers: b[3],
        title_break,
        office_apart: b[4],
    })
}

/// A chain of 1 to 4 documents by distinct issuers, outermost first, each forwarding the next.
fn chain() -> impl Strategy<Value = Parsed> {
    let units = Just((0..UNITS.len()).collect::<Vec<_>>()).prop_shuffle();
    let innermost = (select(TOPICS.to_vec()), select(GENRES.to_vec()), any::<bool>());
    let annexes = subsequence(ANNEX_TITLES.to_vec(), 0..=2).prop_flat_map(|t| {
        (Just(t.clone()), prop::collection::vec(prop::collection::vec(select(ROWS.to_vec()), 1..4), t.len()))
    });
    (1usize..=4, units, prop::collection::vec(own(), 4), innermost, annexes).prop_map(
        |(depth, units, owns, (topic, genre, prefixed), (annex_titles, annex_rows))| {
            let mut docs: Vec<ParsedDocument> = Vec::new();
            for (i, own) in owns.iter().take(depth).enumerate() {
                docs.push(document(UNITS[units[i]], own, i));
            }
            // Titles and attachment lists go from the innermost document outwards.
            let inner = depth - 1;
            let (issuer, _) = UNITS[units[inner]];
            let t = format!("{}关于{topic}的{genre}", if prefixed { issuer } else { "" });
            docs[inner].title = found(t);
            for (n, (title, rows)) in annex_titles.iter().zip(&annex_rows).enumerate() {
                let ordinal = (annex_titles.len() > 1).then_some(n as u32 + 1);
                let annex = Annex { ordinal, title: Some((*title).to_owned()), text: rows.join("\n") };
                docs[inner].annexes.extend(found(annex));
                let item =
                    AttachmentItem { ordinal: n as u32 + 1, title: (*title).to_owned(), number: None, document: None };
                docs[inner].attachments.extend(found(item));
            }
            for i in (0..inner).rev() {
                let (inner_title, inner_issuer, inner_number) = {
                    let f = &docs[i + 1];
                    let get = |x: &Option<Found<String>>| x.as_ref().map(|x| x.value.clone()).unwrap_or_default();
                    (get(&f.title), get(&f.issuer), f.number.as_ref().map(|n| n.value.clone()))
                };
                docs[i].title = found(forwarding_title(&inner_title, &inner_issuer));
                let title = quoted_title(&inner_title, &inner_issuer);
                let item = AttachmentItem { ordinal: 1, title, number: inner_number, document: Some(i + 1) };
                docs[i].attachments.extend(found(item));
                docs[i].forwards = Some(i + 1);
                docs[i + 1].attached_to = Some(i);
            }
            Parsed { documents: docs, warnings: Vec::new() }
        },
    )
}

fn document((issuer, prefix): (&str, &str), own: &Own, depth: usize) -> ParsedDocument {
    let number = DocNumber { prefix: prefix.to_owned(), year: own.year as u32, serial: own.serial };
    let (disclosure, cc, printed_on) = match &own.trailer {
        Some((d, cc, on)) => {
            (d.and_then(found), cc.as_ref().and_then(|c| found(Recipients::from_written(&c.join("，")))), found(*on))
        }
        None => (None, None, None),
    };
    ParsedDocument {
        depth,
        copy_number: if own.copy_number { found("000123".to_owned()) } else { None },
        urgency: own.urgency.and_then(|u| found(u.to_owned())),
        banner: found(format!("{issuer}文件")),
        issuer: found(issuer.to_owned()),
        number: found(number),
        signers: own.signers.as_ref().and_then(|s| found(s.iter().map(|x| (*x).to_owned()).collect())),
        main_recipients: found(Recipients::from_written(&own.recipients.join("，"))),
        body: found(own.body.join("\n")),
        contact: own.contact.and_then(|(name, phone)| found(Contact::from_text(&format!("{name} {phone}")))),
        signature: found(issuer.to_owned()).into_iter().collect(),
        dated: found(own.dated),
        note: own.note.and_then(|n| found(n.to_owned())),
        disclosure,
        cc,
        printed_by: printed_on.as_ref().and_then(|_| found(format!("{issuer}办公室"))),
        printed_on,
        ..Default::default()
    }
}

/// The fields without their line numbers, which a rendering does not keep.
fn fields(p: &Parsed) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("lines");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(&p.documents).unwrap_or_default();
    strip(&mut v);
    v
}

// 256 cases by default; PROPTEST_CASES=5000 for a longer run.
proptest! {
    #[test]
    fn render_then_parse_gives_the_same_fields(want in chain(), style in style()) {
        let text = render_with(&want, &style);
        let got = parse_text(&text);
        prop_assert!(got.warnings.is_empty(), "{:#?}\n{text}", got.warnings);
        prop_assert_eq!(fields(&got), fields(&want), "{}", text);
    }

    #[test]
    fn any_text_parses_without_panicking(text in "(\\PC|\n){0,400}") {
        let _ = parse_text(&text);
    }

    /// Lines of every kind the parser tells apart, in any order: the state machine must cope with all of them.
    #[test]
    fn any_order_of_document_lines_parses(lines in prop::collection::vec(select(LINE_KINDS.to_vec()), 0..80)) {
        let text = lines.join("\n");
        let p = parse_text(&text);
        for (d, doc) in p.documents.iter().enumerate() {
            prop_assert!(doc.forwards.is_none_or(|f| f > d && f < p.documents.len()));
            prop_assert!(doc.attached_to.is_none_or(|a| a < d));
        }
    }
}
