//! The document parser on the real corpus file and on hand-made variants of what real sources look like.
use chrono::NaiveDate;
use gongwen::domain::model::Disclosure;
use gongwen::domain::title::forwarding_title;
use gongwen::parse::source::text_from_bytes;
use gongwen::parse::{Parsed, ParsedDocument, parse_text};

const CORPUS: &str = include_str!("../fixtures/forwarding-chain-lu-zi-bo-2022.txt");
const PROVINCE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
const CITY: &str = "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知";
const DISTRICT: &str =
    "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》的通知";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/parse/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text_from_bytes(name, &bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a real day")
}

fn number(doc: &ParsedDocument) -> String {
    doc.number.as_ref().map(|n| n.value.to_string()).unwrap_or_default()
}

fn title(doc: &ParsedDocument) -> &str {
    doc.title.as_ref().map(|t| t.value.as_str()).unwrap_or_default()
}

fn issuer(doc: &ParsedDocument) -> &str {
    doc.issuer.as_ref().map(|t| t.value.as_str()).unwrap_or_default()
}

fn main_written(doc: &ParsedDocument) -> &str {
    doc.main_recipients.as_ref().map(|r| r.value.written.as_str()).unwrap_or_default()
}

fn lines<T>(f: &Option<gongwen::parse::Found<T>>) -> (usize, usize) {
    f.as_ref().map(|f| f.lines).unwrap_or_default()
}

fn messages(p: &Parsed) -> Vec<String> {
    p.warnings.iter().map(|w| w.message.clone()).collect()
}

#[test]
fn corpus_three_documents_with_their_elements_and_lines() {
    let p = parse_text(CORPUS);
    assert_eq!(p.documents.len(), 3, "{:#?}", p.documents);
    let [district, city, province] = [&p.documents[0], &p.documents[1], &p.documents[2]];

    assert_eq!(
        [number(district), number(city), number(province)],
        ["博财采〔2022〕19号", "淄财采〔2022〕20号", "鲁财采〔2022〕14号"]
    );
    assert_eq!([title(district), title(city), title(province)], [DISTRICT, CITY, PROVINCE]);
    assert_eq!(
        [issuer(district), issuer(city), issuer(province)],
        ["淄博市博山区财政局", "淄博市财政局", "山东省财政厅"]
    );
    assert_eq!(
        [main_written(district), main_written(city), main_written(province)],
        [
            "区直各部门、单位，各镇(街道)财政所，开发区财政审计局",
            "各区县财政局，高新区、经开区、文昌湖区财政局，市直各部门、单位",
            "各市财政局，省直各部门、单位"
        ]
    );
    let groups = &province.main_recipients.as_ref().expect("recipients").value;
    assert_eq!(groups.groups, ["各市财政局", "省直各部门、单位"]);
    assert_eq!(groups.items, ["各市财政局", "省直各部门", "单位"]);

    // Where each element stands in the file.
    assert_eq!([lines(&district.banner), lines(&district.number), lines(&district.title)], [(3, 3), (5, 5), (7, 7)]);
    assert_eq!(
        [lines(&city.banner), lines(&city.number), lines(&city.main_recipients)],
        [(21, 21), (23, 23), (27, 27)]
    );
    assert_eq!(
        [lines(&province.title), lines(&province.body), lines(&province.contact)],
        [(39, 39), (43, 109), (111, 111)]
    );
    assert_eq!([district.lines, city.lines, province.lines], [(3, 148), (21, 148), (35, 142)]);

    // Dates: the district's 成文日期; the printing dates of the other two (their own dates are not in the text).
    assert_eq!(district.dated.as_ref().map(|d| (d.value, d.lines)), Some((day(2022, 12, 22), (17, 17))));
    assert_eq!(district.signature.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(), ["淄博市博山区财政局"]);
    assert!(city.dated.is_none() && province.dated.is_none());
    assert_eq!(province.printed_on.as_ref().map(|d| (d.value, d.lines)), Some((day(2022, 8, 16), (142, 142))));
    assert_eq!(city.printed_on.as_ref().map(|d| (d.value, d.lines)), Some((day(2022, 12, 20), (148, 148))));
    assert_eq!(province.printed_by.as_ref().map(|x| x.value.as_str()), Some("山东省财政厅办公室"));
    assert_eq!(city.printed_by.as_ref().map(|x| x.value.as_str()), Some("淄博市财政局办公室"));
    assert!(district.printed_by.is_none() && district.printed_on.is_none());

    // Disclosure options: the province's (line 138) and the city's (line 144); the district prints none.
    assert_eq!(province.disclosure.as_ref().map(|d| (d.value, d.lines)), Some((Disclosure::Public, (138, 138))));
    assert_eq!(city.disclosure.as_ref().map(|d| (d.value, d.lines)), Some((Disclosure::Public, (144, 144))));
    assert!(district.disclosure.is_none());

    let contact = &province.contact.as_ref().expect("contact").value;
    assert_eq!(contact.text, "王高文 0531-51769834");
    assert_eq!((contact.name.as_deref(), contact.phone.as_deref()), (Some("王高文"), Some("0531-51769834")));
}

#[test]
fn corpus_attachments_links_and_body() {
    let p = parse_text(CORPUS);
    let [district, city, province] = [&p.documents[0], &p.documents[1], &p.documents[2]];

    // The chain, outermost first, by both links.
    assert_eq!(p.chain(0), [0, 1, 2]);
    assert_eq!([district.forwards, city.forwards, province.forwards], [Some(1), Some(2), None]);
    assert_eq!([district.attached_to, city.attached_to, province.attached_to], [None, Some(0), Some(1)]);
    assert_eq!([district.depth, city.depth, province.depth], [0, 1, 2]);

    let item = &district.attachments[0];
    assert_eq!(district.attachments.len(), 1);
    assert_eq!(
        item.value.title,
        "淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》"
    );
    assert_eq!(item.value.number.as_ref().map(|n| n.to_string()).as_deref(), Some("淄财采〔2022〕20号"));
    assert_eq!((item.value.ordinal, item.value.document, item.lines), (1, Some(1), (13, 13)));
    let item = &city.attachments[0].value;
    assert_eq!(
        (item.title.as_str(), item.document),
        ("《山东省财政厅关于做好政府购买服务改革重点工作的通知》", Some(2))
    );
    let item = &province.attachments[0].value;
    assert_eq!((item.title.as_str(), item.document), ("山东省政府购买服务改革联系点名单", None));

    // The province's attachment is the table of 15 contact points, tabs kept.
    assert_eq!(province.annexes.len(), 1);
    let annex = &province.annexes[0];
    assert_eq!(annex.value.title.as_deref(), Some("山东省政府购买服务改革联系点名单"));
    assert_eq!(annex.lines, (117, 136));
    let rows: Vec<&str> = annex.value.text.lines().collect();
    assert_eq!((rows.len(), rows[0], rows[15]), (16, "地级市\t联系点", "菏泽市\t巨野县"));

    // The body: page breaks mended, headings on lines of their own, the contact and attachment list left out.
    let body = &province.body.as_ref().expect("body").value;
    assert!(body.contains("交由基层群众性自治组织等社会力量承担"), "{body}");
    assert!(body.contains("形成一批可推广复制的“示范”项目。"), "{body}");
    assert!(body.contains("一、充分认识推进政府购买服务改革的重要性\n政府购买服务作为"), "{body}");
    assert!(body.ends_with("并对先进做法和典型案例予以宣传和推广。"), "{body}");
    assert!(!body.contains("联系人") && !body.contains("附件："));
    assert_eq!(body.lines().count(), 26);

    // The titles follow the forwarding rule, so the only warnings are the two dates the PDF text lacks.
    assert_eq!(forwarding_title(PROVINCE, "山东省财政厅"), CITY);
    let w = messages(&p);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w.iter().all(|m| m.contains("no date (成文日期)")), "{w:#?}");
    assert_eq!(p.warnings.iter().map(|w| w.document).collect::<Vec<_>>(), [Some(1), Some(2)]);
}

#[test]
fn a_title_that_breaks_the_forwarding_rule_is_reported_with_both_titles() {
    let wrong = CORPUS.replacen(CITY, "关于转发山东省财政厅政府购买服务文件的通知", 1);
    let p = parse_text(&wrong);
    assert_eq!(p.documents.len(), 3);
    let w: Vec<&gongwen::parse::Warning> = p.warnings.iter().filter(|w| w.message.contains("differs")).collect();
    assert_eq!(w.len(), 2, "{:#?}", p.warnings);
    // The city's own title is wrong, and the district's title no longer derives from it.
    assert_eq!((w[0].document, w[0].line), (Some(0), Some(7)));
    assert!(w[1].message.contains("关于转发山东省财政厅政府购买服务文件的通知") && w[1].message.contains(CITY));
    assert_eq!((w[1].document, w[1].line), (Some(1), Some(25)));
}

#[test]
fn gb18030_and_utf8_with_bom_read_the_same() {
    let (gb, _, unmappable) = encoding_rs::GB18030.encode(CORPUS);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&gb).is_err(), "the bytes really are GB18030");
    let from_gb = text_from_bytes("forwarding.txt", &gb).expect("GB18030 decodes");
    assert_eq!(parse_text(&from_gb), parse_text(CORPUS));
    let bom = [b"\xEF\xBB\xBF".as_slice(), CORPUS.as_bytes()].concat();
    let from_bom = text_from_bytes("forwarding.txt", &bom).expect("UTF-8 with BOM");
    assert_eq!(parse_text(&from_bom), parse_text(CORPUS));
}

#[test]
fn word_style_line_breaks_crlf_and_one_line_paragraphs() {
    let text = fixture("word-style.txt");
    assert!(text.contains("\r\n") && text.contains('\u{b}'), "the fixture has CRLF and a manual line break");
    let p = parse_text(&text);
    assert_eq!(p.documents.len(), 1, "{:#?}", p);
    let d = &p.documents[0];
    assert_eq!(d.copy_number.as_ref().map(|x| x.value.as_str()), Some("000001"));
    assert_eq!(d.urgency.as_ref().map(|x| x.value.as_str()), Some("加急"));
    assert_eq!(number(d), "博财采〔2023〕5号");
    assert_eq!(d.signers.as_ref().map(|s| s.value.clone()), Some(vec!["张伟".to_owned(), "李娜".to_owned()]));
    assert_eq!(title(d), "关于印发《博山区政府购买服务项目管理办法》的通知");
    assert_eq!(main_written(d), "区直各部门、单位，各镇(街道)财政所");
    assert_eq!(lines(&d.main_recipients), (6, 7));
    let body = &d.body.as_ref().expect("body").value;
    assert_eq!(body.lines().count(), 3, "{body}");
    let titles: Vec<(u32, &str)> = d.attachments.iter().map(|a| (a.value.ordinal, a.value.title.as_str())).collect();
    assert_eq!(titles, [(1, "博山区政府购买服务项目管理办法"), (2, "博山区政府购买服务项目预算表")]);
    assert_eq!(d.attachments[1].lines, (13, 14));
    assert_eq!(d.contact.as_ref().and_then(|c| c.value.phone.as_deref()), Some("0533-4181234"));
    assert_eq!(d.dated.as_ref().map(|x| x.value), Some(day(2023, 3, 1)));
    assert_eq!(d.note.as_ref().map(|x| x.value.as_str()), Some("此件公开发布"));
    let annexes: Vec<(Option<u32>, Option<&str>)> =
        d.annexes.iter().map(|a| (a.value.ordinal, a.value.title.as_deref())).collect();
    assert_eq!(
        annexes,
        [(Some(1), Some("博山区政府购买服务项目管理办法")), (Some(2), Some("博山区政府购买服务项目预算表"))]
    );
    assert_eq!(d.annexes[1].value.text, "项目名称\t金额（万元）\n社区养老\t120");
    let cc = &d.cc.as_ref().expect("cc").value;
    assert_eq!(cc.items, ["区委办公室", "区人大常委会办公室", "区政府办公室", "区政协办公室"]);
    assert_eq!(d.printed_by.as_ref().map(|x| x.value.as_str()), Some("淄博市博山区财政局办公室"));
    assert_eq!(d.printed_on.as_ref().map(|x| (x.value, x.lines)), Some((day(2023, 3, 1), (28, 28))));
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}

#[test]
fn bracket_variants_and_full_width_digits() {
    let p = parse_text(&fixture("brackets.txt"));
    assert_eq!(p.documents.len(), 2, "{p:#?}");
    assert_eq!([number(&p.documents[0]), number(&p.documents[1])], ["淄财采〔2022〕20号", "鲁财采〔2022〕14号"]);
    let item = &p.documents[0].attachments[0].value;
    assert_eq!(item.number.as_ref().map(|n| n.to_string()).as_deref(), Some("鲁财采〔2022〕14号"));
    assert_eq!(item.document, Some(1));
    assert_eq!(p.chain(0), [0, 1]);
    // Both printing lines name their office, so each goes to its own issuer.
    assert_eq!(p.documents[1].printed_on.as_ref().map(|x| x.value), Some(day(2022, 8, 16)));
    assert_eq!(p.documents[0].printed_on.as_ref().map(|x| x.value), Some(day(2022, 12, 20)));
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
    for variant in
        ["鲁财采[2022]14号", "鲁财采【2022】14号", "鲁财采（2022）14号", "鲁财采(2022)14号", "鲁财采〔２０２２〕１４号"]
    {
        let text =
            format!("山东省财政厅文件\n{variant}\n{PROVINCE}\n各市财政局：\n正文。\n山东省财政厅\n2022年8月16日\n");
        assert_eq!(number(&parse_text(&text).documents[0]), "鲁财采〔2022〕14号", "{variant}");
    }
}

#[test]
fn a_chain_four_deep_with_attachment_headings_page_numbers_and_chinese_dates() {
    let p = parse_text(&fixture("chain-depth4.txt"));
    assert_eq!(p.documents.len(), 4, "{p:#?}");
    assert_eq!(p.chain(0), [0, 1, 2, 3]);
    let numbers: Vec<String> = p.documents.iter().map(number).collect();
    assert_eq!(numbers, ["城东办发〔2023〕1号", "博财采〔2022〕19号", "淄财采〔2022〕20号", "鲁财采〔2022〕14号"]);
    assert_eq!(title(&p.documents[0]), forwarding_title(DISTRICT, "淄博市博山区财政局"));
    assert_eq!([title(&p.documents[1]), title(&p.documents[2]), title(&p.documents[3])], [DISTRICT, CITY, PROVINCE]);
    let dated: Vec<Option<NaiveDate>> = p.documents.iter().map(|d| d.dated.as_ref().map(|x| x.value)).collect();
    let want = [day(2023, 1, 5), day(2022, 12, 22), day(2022, 12, 20), day(2022, 8, 16)];
    assert_eq!(dated, want.map(Some));
    // 版记 blocks come innermost first; each went to its own document.
    let printed: Vec<Option<&str>> =
        p.documents.iter().map(|d| d.printed_by.as_ref().map(|x| x.value.as_str())).collect();
    let offices =
        ["淄博市博山区城东街道党政办公室", "淄博市博山区财政局办公室", "淄博市财政局办公室", "山东省财政厅办公室"];
    assert_eq!(printed, offices.map(Some));
    let disclosure: Vec<Option<Disclosure>> =
        p.documents.iter().map(|d| d.disclosure.as_ref().map(|x| x.value)).collect();
    assert_eq!(disclosure, [Some(Disclosure::NotPublic), Some(Disclosure::OnRequest), Some(Disclosure::Public), None]);
    assert_eq!(p.documents[1].cc.as_ref().map(|c| c.value.written.as_str()), Some("区委办公室，区政府办公室"));
    assert_eq!(p.documents[3].cc.as_ref().map(|c| c.value.written.as_str()), Some("财政部山东监管局"));
    // The province's paragraph cut by a page number is whole again.
    let body = &p.documents[3].body.as_ref().expect("body").value;
    assert!(body.ends_with("稳步推进政府购买服务改革任务落实落地。"), "{body}");
    assert_eq!(p.documents[3].annexes.len(), 1);
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}

#[test]
fn a_document_without_banner_takes_its_issuer_from_the_signature_and_says_so() {
    let p = parse_text(&fixture("no-banner.txt"));
    assert_eq!(p.documents.len(), 1);
    let d = &p.documents[0];
    assert!(d.banner.is_none());
    assert_eq!((number(d), title(d), issuer(d)), ("鲁财采〔2022〕14号".to_owned(), PROVINCE, "山东省财政厅"));
    assert_eq!(d.dated.as_ref().map(|x| x.value), Some(day(2022, 8, 16)));
    assert_eq!(d.note.as_ref().map(|x| x.value.as_str()), Some("此件主动公开"));
    assert_eq!(messages(&p).len(), 1);
    assert!(messages(&p)[0].contains("no banner"), "{:?}", messages(&p));

    // Without number either: the title comes first, and the missing number is a warning.
    let text = format!("{PROVINCE}\n\n各市财政局：\n\n正文。\n\n山东省财政厅\n\n2022年8月16日\n");
    let p = parse_text(&text);
    assert_eq!((title(&p.documents[0]), main_written(&p.documents[0])), (PROVINCE, "各市财政局"));
    assert!(messages(&p).iter().any(|m| m.contains("no document number")), "{:?}", messages(&p));
}

#[test]
fn a_truncated_file_gives_warnings_and_what_was_read() {
    // Cut in the middle of the province's body (line 81 of the corpus).
    let cut = CORPUS.find("规范承接主体确定方式").expect("in the corpus");
    let p = parse_text(&CORPUS[..cut]);
    assert_eq!(p.documents.len(), 3);
    assert_eq!(p.chain(0), [0, 1, 2]);
    assert_eq!(title(&p.documents[2]), PROVINCE);
    assert!(p.documents[2].printed_on.is_none() && p.documents[1].printed_on.is_none());
    assert!(messages(&p).iter().any(|m| m.contains("cut short")), "{:?}", messages(&p));

    // Cut in the district's title: its title stays open and the chain is gone.
    let cut = CORPUS.find("服务改革重点工作的通知〉").expect("in the corpus");
    let p = parse_text(&CORPUS[..cut]);
    assert_eq!(p.documents.len(), 1);
    assert!(messages(&p).iter().any(|m| m.contains("no forwarded document follows")), "{:?}", messages(&p));
    assert!(messages(&p).iter().any(|m| m.contains("does not close")), "{:?}", messages(&p));

    // Cut at every line and inside every 7th character: never a panic, never a document from nothing, and a cut
    // inside a word of the province's body is always noticed.
    let body = CORPUS.find("为推进我省").expect("body start")..CORPUS.find("联系人及电话").expect("body end");
    let mut cuts: Vec<usize> = CORPUS.match_indices('\n').map(|(i, _)| i).collect();
    cuts.extend(CORPUS.char_indices().map(|(i, _)| i).step_by(7));
    for cut in cuts {
        let p = parse_text(&CORPUS[..cut]);
        assert!(p.documents.len() <= 3, "cut at {cut}");
        let in_word = CORPUS[..cut].chars().last().is_some_and(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        if body.contains(&cut) && in_word {
            assert!(messages(&p).iter().any(|m| m.contains("cut short")), "cut at {cut}: {:?}", messages(&p));
        }
    }
}

#[test]
fn empty_and_strange_inputs() {
    assert!(parse_text("").documents.is_empty());
    assert!(messages(&parse_text("\n\n  \n")).iter().any(|m| m.contains("no document")));
    for text in ["附件", "印发", "文件\n号", "鲁财采〔2022〕0号\n", "信息公开选项：\n抄送：", "（\n）\n2022年2月30日\n"]
    {
        let _ = parse_text(text);
    }
    let p = parse_text("山东省财政厅文件\n鲁财采〔2022〕0号\n");
    assert!(messages(&p).iter().any(|m| m.contains("unreadable document number")), "{:?}", messages(&p));
}

#[test]
fn hard_wrapped_pdf_text_without_blank_lines_reads_the_same() {
    // pdftotext-style: every printed line its own line (28 characters, as a GB/T 9704 page sets them), no blanks.
    let mut wrapped = String::new();
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let chars: Vec<char> = line.chars().collect();
        let width = if line.contains('\t') { chars.len().max(1) } else { 28 };
        for chunk in chars.chunks(width) {
            wrapped.extend(chunk);
            wrapped.push('\n');
        }
    }
    let (a, b) = (parse_text(&wrapped), parse_text(CORPUS));
    assert_eq!(a.documents.len(), 3);
    assert_eq!(a.documents[0].title.as_ref().map(|t| t.lines), Some((3, 4)), "the title spans two lines");
    for (x, y) in a.documents.iter().zip(&b.documents) {
        assert_eq!((title(x), number(x), main_written(x)), (title(y), number(y), main_written(y)));
        let values = |d: &ParsedDocument| {
            let a: Vec<_> = d.attachments.iter().map(|a| a.value.clone()).collect();
            (a, d.contact.as_ref().map(|c| c.value.clone()), d.printed_on.as_ref().map(|p| p.value), d.forwards)
        };
        assert_eq!(values(x), values(y));
        // Where a printed line happened to end with 。 the paragraph stays split; the text is the same.
        let flat = |d: &ParsedDocument| d.body.as_ref().map(|b| b.value.replace('\n', ""));
        assert_eq!(flat(x), flat(y));
    }
    assert_eq!(messages(&a), messages(&b));
}

/// The corpus with three mistakes a transcription or a clerk can make: the district's attachment list names some
/// other document, the city's 主送 is gone, and the district's signature names another unit. Each is a warning on
/// its line, and the chain is still read.
#[test]
fn an_unlisted_attachment_a_missing_main_recipient_and_a_foreign_signature_are_reported() {
    let lines: Vec<&str> = CORPUS.lines().collect();
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    assert!(
        edited[12].starts_with("附件：")
            && edited[26].starts_with("各区县财政局")
            && edited[14] == "淄博市博山区财政局"
    );
    edited[12] = "附件：淄博市财政局关于年度决算的通知".into();
    edited[26] = String::new();
    edited[14] = "淄博市博山区人民政府".into();
    let p = parse_text(&edited.join("\n"));
    assert_eq!(p.chain(0), [0, 1, 2], "{:#?}", p.warnings);
    let find = |needle: &str| {
        let w: Vec<_> = p.warnings.iter().filter(|w| w.message.contains(needle)).collect();
        assert_eq!(w.len(), 1, "{needle}: {:#?}", p.warnings);
        (w[0].document, w[0].line)
    };
    assert_eq!(find("does not name document 1 (淄财采〔2022〕20号"), (Some(0), Some(13)));
    assert_eq!(find("no main recipients (主送)"), (Some(1), Some(25)));
    assert_eq!(find("signed by 「淄博市博山区人民政府」"), (Some(0), Some(15)));
    // Untouched, the corpus says none of this.
    let clean = parse_text(CORPUS);
    assert!(
        !messages(&clean).iter().any(|m| m.contains("主送") || m.contains("signed by") || m.contains("does not name"))
    );
}
