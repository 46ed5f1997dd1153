//! The parser's sources and command: a .docx built here, and `gongwen parse` run as a program.
use gongwen::parse::source::text_from_bytes;
use gongwen::parse::{ParsedDocument, parse_text};

const PROVINCE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
const CITY: &str = "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知";

fn number(doc: &ParsedDocument) -> String {
    doc.number.as_ref().map(|n| n.value.to_string()).unwrap_or_default()
}

fn title(doc: &ParsedDocument) -> &str {
    doc.title.as_ref().map(|t| t.value.as_str()).unwrap_or_default()
}

/// A minimal .docx: word/document.xml with runs split mid-word, a manual line break in the title, an entity and
/// a table, as Word writes them.
fn docx(paragraphs: &[&str], table: &[[&str; 2]]) -> Vec<u8> {
    use std::io::Write;
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    for p in paragraphs {
        xml.push_str("<w:p><w:pPr><w:jc w:val=\"center\"/></w:pPr>");
        for (n, part) in p.split('|').enumerate() {
            if n > 0 {
                xml.push_str("<w:r><w:br/></w:r>");
            }
            let mid = part.char_indices().nth(part.chars().count() / 2).map_or(0, |(i, _)| i);
            let (a, b) = part.split_at(mid);
            xml.push_str(&format!("<w:r><w:t xml:space=\"preserve\">{a}</w:t></w:r><w:r><w:t>{b}</w:t></w:r>"));
        }
        xml.push_str("</w:p>");
    }
    xml.push_str("<w:tbl>");
    for row in table {
        xml.push_str("<w:tr>");
        for cell in row {
            xml.push_str(&format!("<w:tc><w:p><w:r><w:t>{cell}</w:t></w:r></w:p></w:tc>"));
        }
        xml.push_str("</w:tr>");
    }
    xml.push_str("</w:tbl><w:sectPr/></w:body></w:document>");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("word/document.xml", zip::write::SimpleFileOptions::default()).expect("zip entry");
    zip.write_all(xml.as_bytes()).expect("zip write");
    zip.finish().expect("zip finish").into_inner()
}

#[test]
fn a_docx_reads_as_its_paragraphs_and_parses() {
    let bytes = docx(
        &[
            "山东省财政厅文件",
            "鲁财采〔2022〕14号",
            "山东省财政厅关于做好政府购买|服务改革重点工作的通知",
            "各市财政局，省直各部门、单位：",
            "请于11月30日前报送R&amp;D项目情况。",
            "附件：山东省政府购买服务改革联系点名单",
            "山东省财政厅",
            "2022年8月16日",
            "附件",
            "山东省政府购买服务改革联系点名单",
        ],
        &[["地级市", "联系点"], ["济南市", "市中区"]],
    );
    let text = text_from_bytes("notice.docx", &bytes).expect("docx text");
    assert!(text.contains("请于11月30日前报送R&D项目情况。\n"), "{text}");
    assert!(text.ends_with("地级市\t联系点\n济南市\t市中区\n"), "{text}");
    let p = parse_text(&text);
    assert_eq!(p.documents.len(), 1, "{p:#?}");
    let d = &p.documents[0];
    assert_eq!((number(d), title(d)), ("鲁财采〔2022〕14号".to_owned(), PROVINCE));
    assert_eq!(d.title.as_ref().map(|t| t.lines), Some((3, 4)));
    assert_eq!(d.annexes[0].value.text, "地级市\t联系点\n济南市\t市中区");
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}

fn gongwen(args: &[&str]) -> std::process::Output {
    crate::common::gongwen().args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run gongwen")
}

#[test]
fn the_parse_command_prints_json_and_text() {
    let corpus = "tests/fixtures/forwarding-chain-lu-zi-bo-2022.txt";
    let out = gongwen(&["parse", corpus, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json[0]["file"], corpus);
    let docs = json[0]["documents"].as_array().expect("documents");
    let serials: Vec<&serde_json::Value> = docs.iter().map(|d| &d["number"]["value"]["serial"]).collect();
    assert_eq!(serials, [19, 20, 14]);
    assert_eq!(docs[1]["title"]["value"], CITY);
    assert_eq!(docs[0]["forwards"], 1);
    assert_eq!(docs[2]["contact"]["value"]["phone"], "0531-51769834");
    assert_eq!(json[0]["warnings"].as_array().map(Vec::len), Some(2));

    let out = gongwen(&["parse", corpus]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("chain: 博财采〔2022〕19号 → 淄财采〔2022〕20号 → 鲁财采〔2022〕14号"), "{text}");
    assert!(text.contains("printed on      L148      2022-12-20"), "{text}");

    // A file that cannot be read fails the command, after the others are printed.
    let out = gongwen(&["parse", "tests/fixtures/parse/no-such-file.txt", corpus]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("鲁财采〔2022〕14号"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-file.txt"));
}

#[cfg(feature = "pdf")]
use crate::pdf_writer::pdf;

#[cfg(feature = "pdf")]
#[test]
fn a_pdf_text_layer_reads_and_parses() {
    let bytes = pdf(&[
        "山东省财政厅文件",
        "鲁财采〔2022〕14号",
        "山东省财政厅关于做好政府购买服务改革重点工作的通知",
        "各市财政局，省直各部门、单位：",
        "为推进我省政府购买服务改革，现就有关工作通知如下。",
        "山东省财政厅",
        "2022年8月16日",
    ]);
    let text = text_from_bytes("notice.pdf", &bytes).expect("PDF text");
    let p = parse_text(&text);
    assert_eq!(p.documents.len(), 1, "{text}\n{p:#?}");
    let d = &p.documents[0];
    assert_eq!((number(d), title(d)), ("鲁财采〔2022〕14号".to_owned(), PROVINCE), "{text}");
    assert_eq!(d.main_recipients.as_ref().map(|r| r.value.written.as_str()), Some("各市财政局，省直各部门、单位"));
    assert!(p.warnings.is_empty(), "{text}\n{:#?}", p.warnings);
    // A damaged PDF is an error, not a panic.
    assert!(text_from_bytes("broken.pdf", &bytes[..bytes.len() / 2]).is_err());
    assert!(text_from_bytes("empty.pdf", b"%PDF-1.4\n%%EOF\n").is_err());
    // pdf-extract panics on a font encoding it does not know (a name of the same length keeps the offsets): an
    // error too.
    let unknown = String::from_utf8_lossy(&bytes).replacen("/Identity-H", "/UniGB-UCS2", 1);
    let result = text_from_bytes("unknown.pdf", unknown.as_bytes());
    assert!(matches!(result, Err(gongwen::parse::source::SourceError::Pdf(_))), "{result:?}");
}
