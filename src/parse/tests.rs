//! Layouts beyond the corpus: joint banners, letters (函), the 1999 layout's 主题词 and 抄报, 附件1： lists.
use super::*;

fn one(text: &str) -> ParsedDocument {
    let p = parse_text(text);
    assert_eq!(p.documents.len(), 1, "{p:#?}");
    p.documents.into_iter().next().unwrap_or_default()
}

fn value<T: Clone>(f: &Option<Found<T>>) -> Option<T> {
    f.as_ref().map(|f| f.value.clone())
}

#[test]
fn a_joint_banner_names_the_lead_issuer_first() {
    let d = one(
        "山东省财政厅\n山东省民政厅\n文件\n鲁财社〔2023〕3号\n山东省财政厅 山东省民政厅关于加强养老服务的通知\n各市财政局、民政局：\n正文。\n山东省财政厅　　山东省民政厅\n2023年5月6日\n",
    );
    assert_eq!(value(&d.banner).as_deref(), Some("山东省财政厅\n山东省民政厅\n文件"));
    assert_eq!(d.banner.as_ref().map(|b| b.lines), Some((1, 3)));
    assert_eq!(value(&d.issuer).as_deref(), Some("山东省财政厅"));
    assert_eq!(value(&d.title).as_deref(), Some("山东省财政厅山东省民政厅关于加强养老服务的通知"));
    let names: Vec<&str> = d.signature.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(names, ["山东省财政厅", "山东省民政厅"]);
}

#[test]
fn a_letter_prints_the_issuer_without_wen_jian() {
    let d = one(
        "山东省财政厅\n\n鲁财采函〔2022〕2号\n\n山东省财政厅关于做好疫情防控政府采购工作的函\n\n各市财政局：\n\n正文。\n\n山东省财政厅\n\n2022年3月1日\n",
    );
    assert_eq!(value(&d.banner).as_deref(), Some("山东省财政厅"));
    assert_eq!(value(&d.issuer).as_deref(), Some("山东省财政厅"));
    assert_eq!(value(&d.number).map(|n| n.to_string()).as_deref(), Some("鲁财采函〔2022〕2号"));
    assert_eq!(value(&d.title).as_deref(), Some("山东省财政厅关于做好疫情防控政府采购工作的函"));
}

#[test]
fn the_1999_layout_and_labelled_attachment_entries() {
    let text = "淄博市财政局文件\n淄财采〔2010〕7号\n关于印发两个办法的通知\n各区县财政局：\n正文。\n附件1：政府采购管理办法\n附件2：政府采购监督办法\n淄博市财政局\n二〇一〇年三月五日\n主题词：财政　采购　办法　通知\n抄报：市政府办公厅。\n抄送：各区县人民政府。\n淄博市财政局办公室　　　二〇一〇年三月五日印发\n";
    let p = parse_text(text);
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
    let d = &p.documents[0];
    let items: Vec<(u32, &str)> = d.attachments.iter().map(|a| (a.value.ordinal, a.value.title.as_str())).collect();
    assert_eq!(items, [(1, "政府采购管理办法"), (2, "政府采购监督办法")]);
    assert_eq!(value(&d.keywords), Some(vec!["财政".into(), "采购".into(), "办法".into(), "通知".into()]));
    // 抄报 and 抄送 together make the cc list.
    assert_eq!(value(&d.cc).map(|c| c.groups), Some(vec!["市政府办公厅".into(), "各区县人民政府".into()]));
    assert_eq!(d.cc.as_ref().map(|c| c.lines), Some((11, 12)));
    assert_eq!(value(&d.dated), chrono::NaiveDate::from_ymd_opt(2010, 3, 5));
}

const CITY_BEFORE: &str = "淄博市财政局文件\n淄财采〔2022〕20号\n关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知\n各区县财政局：\n现将《山东省财政厅关于做好政府购买服务改革重点工作的通知》转发给你们，请贯彻执行。\n附件：《山东省财政厅关于做好政府购买服务改革重点工作的通知》\n淄博市财政局\n2022年12月20日\n抄送：市政府办公室。\n淄博市财政局办公室　　2022年12月20日印发\n";
const PROVINCE_AFTER: &str = "山东省财政厅文件\n鲁财采〔2022〕14号\n山东省财政厅关于做好政府购买服务改革重点工作的通知\n各市财政局：\n正文。\n山东省财政厅\n2022年8月16日\n山东省财政厅办公室　　2022年8月16日印发\n";

#[test]
fn a_chain_printed_with_the_trailer_before_the_attachment() {
    for heading in ["附件\n", ""] {
        let p = parse_text(&format!("{CITY_BEFORE}{heading}{PROVINCE_AFTER}"));
        assert_eq!(p.documents.len(), 2, "{p:#?}");
        assert_eq!(p.chain(0), [0, 1], "heading {heading:?}");
        assert_eq!((p.documents[1].depth, p.documents[1].attached_to), (1, Some(0)));
        assert_eq!(p.documents[0].attachments[0].value.document, Some(1));
        assert_eq!(value(&p.documents[0].cc).map(|c| c.written).as_deref(), Some("市政府办公室"));
        assert_eq!(value(&p.documents[1].printed_by).as_deref(), Some("山东省财政厅办公室"));
        // Read so, and said so: the layout is not GB/T 9704's, and the title check ran.
        assert_eq!(p.warnings.len(), 1, "{:#?}", p.warnings);
        assert!(p.warnings[0].message.contains("版记"), "{:#?}", p.warnings);
    }
    // Two documents in one file that do not list one another stay apart.
    let p = parse_text(&format!("{PROVINCE_AFTER}{PROVINCE_AFTER}"));
    assert_eq!((p.documents.len(), p.documents[1].attached_to), (2, None));
}

#[test]
fn a_contact_over_two_lines_merges_and_further_ones_are_reported_once() {
    let extra = "联系人：李四 0533-7654321\n".repeat(3);
    let text = format!(
        "山东省财政厅文件\n鲁财采〔2022〕14号\n关于做好工作的通知\n各市财政局：\n正文。\n联系人：王高文\n联系电话：0531-51769834\n{extra}山东省财政厅\n2022年8月16日\n"
    );
    let p = parse_text(&text);
    let c = value(&p.documents[0].contact);
    assert_eq!(c.as_ref().map(|c| c.text.as_str()), Some("王高文 0531-51769834"));
    assert_eq!(c.and_then(|c| c.phone).as_deref(), Some("0531-51769834"));
    let told: Vec<&Warning> = p.warnings.iter().filter(|w| w.message.contains("contact")).collect();
    assert_eq!((told.len(), told[0].line), (1, Some(8)), "{:#?}", p.warnings);
}

#[test]
fn a_web_page_prints_the_title_above_the_number() {
    let text = "山东省财政厅关于做好政府购买服务\n改革重点工作的通知\n鲁财采〔2022〕14号\n各市财政局，省直各部门、单位：\n正文。\n山东省财政厅\n2022年8月16日\n";
    let p = parse_text(text);
    let d = &p.documents[0];
    assert_eq!(value(&d.title).as_deref(), Some("山东省财政厅关于做好政府购买服务改革重点工作的通知"));
    assert_eq!(d.title.as_ref().map(|t| t.lines), Some((1, 2)));
    assert_eq!(value(&d.number).map(|n| n.serial), Some(14));
    assert_eq!(value(&d.main_recipients).map(|r| r.written).as_deref(), Some("各市财政局，省直各部门、单位"));
    // Only the missing banner is worth a word.
    assert_eq!(p.warnings.len(), 1, "{:#?}", p.warnings);
    // A line above the number that is no title is skipped, and said so.
    let p = parse_text(&format!("打印本页\n{}", &text[text.find("鲁财采").unwrap_or(0)..]));
    assert!(p.documents[0].title.is_none());
    assert!(p.warnings.iter().any(|w| w.message.contains("before the first document")), "{:#?}", p.warnings);
}

/// Found by the `parse` fuzz target: a bannerless text opening with a sentence lost that sentence, and the
/// document came back with no lines at all.
#[test]
fn a_text_that_opens_with_a_sentence_keeps_it_as_body() {
    let d = one("请各单位于月底前报送。\n");
    assert_eq!(value(&d.body).as_deref(), Some("请各单位于月底前报送。"));
    assert_eq!(d.lines, (1, 1));
    assert!(d.title.is_none());
    let d = one("请各单位于月底前报送。\n联系人：王高文 0531-51769834\n山东省财政厅\n2022年8月1日\n");
    assert_eq!(value(&d.body).as_deref(), Some("请各单位于月底前报送。"));
    assert_eq!(d.dated.as_ref().map(|x| x.lines), Some((4, 4)));
}

fn warnings_for(p: &Parsed, d: usize) -> Vec<(Option<usize>, &str)> {
    p.warnings.iter().filter(|w| w.document == Some(d)).map(|w| (w.line, w.message.as_str())).collect()
}

/// A title cut after a few characters under a full row of two signers (山东省 / 财政厅关于…) is the title, not a
/// third signer: under the number, a row of names must stand apart from what follows.
#[test]
fn a_short_first_title_line_under_a_full_signer_row_is_the_title() {
    for first in ["山东", "山东省", "山东省财"] {
        let rest = &"山东省财政厅关于做好工作的通知"[first.len()..];
        let d = one(&format!(
            "山东省财政厅文件\n鲁财采〔2022〕14号　　签发人：张伟　李娜\n{first}\n{rest}\n各市财政局：\n正文。\n山东省财政厅\n2022年8月16日\n"
        ));
        assert_eq!(value(&d.signers), Some(vec!["张伟".to_owned(), "李娜".to_owned()]), "{first}");
        assert_eq!(value(&d.title).as_deref(), Some("山东省财政厅关于做好工作的通知"), "{first}");
        assert_eq!(d.title.as_ref().map(|t| t.lines), Some((3, 4)));
    }
}

#[test]
fn further_signer_rows_are_read_where_gb_t_9704_puts_them() {
    // Under a 签发人 row that the number has not followed yet (the number sits on the last signer row).
    let d = one(
        "山东省财政厅文件\n签发人：张伟　李娜\n王芳　刘洋\n鲁财采〔2022〕14号\n山东省财政厅关于做好工作的请示\n财政部：\n正文。\n山东省财政厅\n2022年8月16日\n",
    );
    let want: Vec<String> = ["张伟", "李娜", "王芳", "刘洋"].map(String::from).to_vec();
    assert_eq!(value(&d.signers), Some(want));
    assert_eq!(d.signers.as_ref().map(|s| s.lines), Some((2, 3)));
    assert_eq!(value(&d.title).as_deref(), Some("山东省财政厅关于做好工作的请示"));
    // Under the number, right under the names and set apart from the title by a blank line.
    let d = one(
        "山东省财政厅文件\n鲁财采〔2022〕14号　　签发人：张伟　李娜\n王芳\n\n山东省财政厅关于做好工作的请示\n财政部：\n正文。\n山东省财政厅\n2022年8月16日\n",
    );
    assert_eq!(d.signers.as_ref().map(|s| s.value.len()), Some(3));
    assert_eq!(value(&d.title).as_deref(), Some("山东省财政厅关于做好工作的请示"));
}

#[test]
fn real_spaces_in_a_title_stay() {
    let d = one(
        "山东省财政厅文件\n鲁财采〔2022〕14号\n关于贯彻执行GB/T 9704-2012\n的通知\n各市财政局：\n正文。\n山东省财政厅\n2022年8月16日\n",
    );
    assert_eq!(value(&d.title).as_deref(), Some("关于贯彻执行GB/T 9704-2012的通知"));
}

const FORWARD_HEAD: &str = "淄博市财政局文件\n淄财采〔2022〕20号\n关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知\n各区县财政局：\n现将文件转发给你们，请贯彻执行。\n";
const FORWARD_SIGNED: &str = "淄博市财政局\n2022年12月20日\n";
const CARRIED: &str = "山东省财政厅文件\n鲁财采〔2022〕14号\n山东省财政厅关于做好政府购买服务改革重点工作的通知\n各市财政局：\n正文。\n山东省财政厅\n2022年8月16日\n山东省财政厅办公室　　2022年8月16日印发\n淄博市财政局办公室　　2022年12月20日印发\n";

#[test]
fn an_attachment_list_that_does_not_name_the_carried_document_is_reported() {
    let listed =
        format!("{FORWARD_HEAD}附件：山东省财政厅关于做好政府购买服务改革重点工作的通知\n{FORWARD_SIGNED}{CARRIED}");
    let p = parse_text(&listed);
    assert_eq!(p.chain(0), [0, 1], "{p:#?}");
    assert!(warnings_for(&p, 0).is_empty(), "{:#?}", p.warnings);

    let wrong = format!("{FORWARD_HEAD}附件：山东省财政厅关于加强预算绩效管理的通知\n{FORWARD_SIGNED}{CARRIED}");
    let p = parse_text(&wrong);
    assert_eq!(p.chain(0), [0, 1], "{p:#?}");
    let w = warnings_for(&p, 0);
    assert_eq!(w.len(), 1, "{:#?}", p.warnings);
    assert_eq!(w[0].0, Some(6));
    assert!(w[0].1.contains("lines 6–6") && w[0].1.contains("鲁财采〔2022〕14号"), "{}", w[0].1);
    assert!(p.documents[0].attachments[0].value.document.is_none());

    let unlisted = format!("{FORWARD_HEAD}{FORWARD_SIGNED}{CARRIED}");
    let p = parse_text(&unlisted);
    assert_eq!(p.chain(0), [0, 1], "{p:#?}");
    let w = warnings_for(&p, 0);
    assert_eq!(w.len(), 1, "{:#?}", p.warnings);
    assert_eq!(w[0].0, Some(8), "the carried document's banner");
    assert!(w[0].1.contains("no attachment list"), "{}", w[0].1);
}

#[test]
fn a_signature_by_another_unit_than_the_banner_is_reported() {
    let p = parse_text(
        "山东省财政厅文件\n鲁财采〔2022〕14号\n关于做好工作的通知\n各市财政局：\n正文。\n山东省民政厅\n2022年8月16日\n",
    );
    let w = warnings_for(&p, 0);
    assert_eq!(w.len(), 1, "{:#?}", p.warnings);
    assert_eq!(w[0].0, Some(6));
    assert!(w[0].1.contains("山东省民政厅") && w[0].1.contains("(line 1)"), "{}", w[0].1);
    // A standard short form on either side is the same unit.
    let p = parse_text(
        "中共淄博市委文件\n淄委〔2022〕3号\n关于做好工作的通知\n各区县委：\n正文。\n中共淄博市委员会\n2022年8月16日\n",
    );
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}

#[test]
fn a_document_without_main_recipients_is_reported_unless_its_genre_needs_none() {
    let p = parse_text(
        "山东省财政厅文件\n鲁财采〔2022〕14号\n关于做好工作的通知\n正文第一段。\n山东省财政厅\n2022年8月16日\n",
    );
    let w = warnings_for(&p, 0);
    assert_eq!(w.len(), 1, "{:#?}", p.warnings);
    assert_eq!(w[0].0, Some(3));
    assert!(w[0].1.contains("主送"), "{}", w[0].1);
    let p = parse_text(
        "山东省财政厅文件\n鲁财采〔2022〕15号\n山东省财政厅公告\n正文第一段。\n山东省财政厅\n2022年8月16日\n",
    );
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}
