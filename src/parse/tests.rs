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
