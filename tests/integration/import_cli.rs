//! `gongwen parse` and `gongwen import` as a user runs them: the real binary against the real server, a directory
//! of files in several encodings and formats, a broken file, and a second run that must create nothing.
use std::io::Write;
use std::path::Path;
use std::process::Output;

use crate::common;

use common::cli_server as serve;
use gongwen::cli::client::Client;
use gongwen::pb;

const CORPUS: &str = include_str!("../fixtures/forwarding-chain-lu-zi-bo-2022.txt");

const LETTER: &str = "山东省财政厅文件\n\n鲁财采〔2022〕30号\n\n山东省财政厅关于报送采购统计的通知\n\n各市财政局：\n\n\
请于12月31日前报送。\n\n山东省财政厅\n\n2022年12月1日\n\n信息公开选项：依申请公开\n";

const NOTICE: [&str; 8] = [
    "淄博市财政局文件",
    "淄财采〔2022〕31号",
    "淄博市财政局关于年度决算的通知",
    "各区县财政局：",
    "请按时完成年度决算。",
    "淄博市财政局",
    "2022年12月5日",
    "信息公开选项：主动公开",
];

/// A minimal .docx: one paragraph per line of `paragraphs`.
fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String =
        paragraphs.iter().map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>")).collect::<Vec<_>>().join("");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document \
         xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("word/document.xml", zip::write::SimpleFileOptions::default()).expect("zip entry");
    zip.write_all(xml.as_bytes()).expect("zip write");
    zip.finish().expect("zip finish").into_inner()
}

fn gongwen(args: &[&str]) -> Output {
    common::gongwen().args(args).output().expect("run gongwen")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write fixture");
}

async fn get(client: &Client, number: &str) -> pb::Document {
    let req = pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Number(number.into())) };
    client.documents().get_document(req).await.expect("document").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_imports_once_and_a_second_run_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let (running, addr, client) = serve(dir.path()).await;

    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("2022")).expect("mkdir");
    write(&docs, "chain.txt", CORPUS.as_bytes());
    write(&docs, "letter-gb18030.txt", &encoding_rs::GB18030.encode(LETTER).0);
    write(&docs.join("2022"), "notice.docx", &docx(&NOTICE));
    write(&docs, "broken.txt", &[0x81, 0x20, 0xff, 0x00]);
    write(&docs, "readme.md", b"not a document: ignored by extension");

    let keys_arg = keys.display().to_string();
    let docs_arg = docs.display().to_string();
    let first = gongwen(&["--server", &addr, "--keys", &keys_arg, "import", &docs_arg]);
    let out = text(&first);
    assert_eq!(first.status.code(), Some(1), "one file is broken: {out}");
    assert!(out.contains("4 file(s): 5 document(s) imported, 0 skipped as duplicates, 1 file(s) failed"), "{out}");
    assert!(out.contains("broken.txt: FAILED") && out.contains("not UTF-8, UTF-16 or GB18030"), "{out}");

    // The chain is linked, numbered as printed, and marked as imported from its file.
    let get = |n: &'static str| get(&client, n);
    let province = get("鲁财采〔2022〕14号").await;
    let city = get("淄财采〔2022〕20号").await;
    let district = get("博财采〔2022〕19号").await;
    assert_eq!(city.forwards_document_id, province.id);
    assert_eq!(district.forwards_document_id, city.id);
    assert_eq!(city.imported.as_ref().map(|i| (i.source_name.as_str(), i.position)), Some(("chain.txt", 1)));
    // The province's notice prints no 成文日期: it is dated by its printing, and the record says so.
    assert_eq!(province.draft.as_ref().map(|d| d.dated.as_str()), Some("2022-08-16"));
    assert_eq!(province.imported.as_ref().map(|i| i.dated_from_printing), Some(true));
    assert_eq!(district.draft.as_ref().map(|d| d.dated.as_str()), Some("2022-12-22"));
    assert_eq!(district.imported.as_ref().map(|i| i.dated_from_printing), Some(false), "it prints its date");
    let media = |d: &pb::Document| d.imported.as_ref().map(|i| i.source_media_type.clone()).unwrap_or_default();
    assert_eq!(media(&district), "text/plain; charset=utf-8");
    let show = gongwen(&["--server", &addr, "--keys", &keys.display().to_string(), "show", "鲁财采〔2022〕14号"]);
    let shown = text(&show);
    assert!(shown.contains("2022-08-16 (not printed in the source: its 印发日期)"), "{shown}");
    assert!(shown.contains("导入自") && shown.contains("chain.txt"), "{shown}");
    assert_eq!(
        district.draft.as_ref().map(|d| d.disclosure),
        Some(pb::Disclosure::Public as i32),
        "inherited from the forwarded document"
    );
    assert!(province.attachments.first().is_some_and(|a| a.size > 0), "the contact-point table was uploaded");
    let letter = get("鲁财采〔2022〕30号").await;
    assert_eq!(letter.draft.as_ref().map(|d| d.disclosure), Some(pb::Disclosure::OnRequest as i32));
    assert_eq!(media(&letter), "text/plain; charset=gb18030");
    let notice = get("淄财采〔2022〕31号").await;
    assert_eq!(notice.draft.as_ref().map(|d| d.title.as_str()), Some("淄博市财政局关于年度决算的通知"));
    assert_eq!(media(&notice), "application/vnd.openxmlformats-officedocument.wordprocessingml.document");

    let before = running.app.content_digest().await.expect("digest");
    let second = gongwen(&["--server", &addr, "--keys", &keys_arg, "import", &docs_arg]);
    let out = text(&second);
    assert!(out.contains("0 document(s) imported, 5 skipped as duplicates, 1 file(s) failed"), "{out}");
    // Uploading the same files again stores nothing new either: content addressing.
    assert_eq!(running.app.content_digest().await.expect("digest"), before, "a second run changes nothing");

    let parsed = gongwen(&["parse", "--json", &docs.join("chain.txt").display().to_string()]);
    assert!(parsed.status.success(), "{}", text(&parsed));
    let json: serde_json::Value = serde_json::from_slice(&parsed.stdout).expect("json");
    let file = &json[0];
    assert_eq!(file["documents"].as_array().map(Vec::len), Some(3));
    let number = &file["documents"][1]["number"]["value"];
    assert_eq!((&number["prefix"], &number["year"], &number["serial"]), (&"淄财采".into(), &2022.into(), &20.into()));
    assert_eq!(file["documents"][1]["forwards"], 2);
    running.stop().await.expect("stop");
}

#[cfg(feature = "pdf")]
use crate::pdf_writer;

/// A PDF through `gongwen import`: read from its text layer, stored as application/pdf, and, as it prints no
/// 成文日期, dated by its printing and marked so.
#[cfg(feature = "pdf")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_imports_as_a_pdf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, addr, client) = serve(dir.path()).await;
    let bytes = pdf_writer::pdf(&[
        "山东省财政厅文件",
        "鲁财采〔2022〕40号",
        "山东省财政厅关于报送GB/T 9704 执行情况的通知",
        "各市财政局：",
        "请于12月31日前报送执行情况。",
        "信息公开选项：主动公开",
        "山东省财政厅办公室　　2022年12月2日印发",
    ]);
    let file = dir.path().join("notice.pdf");
    std::fs::write(&file, &bytes).expect("write the PDF");
    let keys = dir.path().join("keys").display().to_string();
    let out = gongwen(&["--server", &addr, "--keys", &keys, "import", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 document(s) imported"), "{}", text(&out));

    let doc = get(&client, "鲁财采〔2022〕40号").await;
    let draft = doc.draft.clone().unwrap_or_default();
    assert_eq!(draft.title, "山东省财政厅关于报送GB/T 9704执行情况的通知", "the real space stays");
    assert_eq!((draft.dated.as_str(), draft.printed_on.as_str()), ("2022-12-02", "2022-12-02"));
    let src = doc.imported.expect("imported");
    assert_eq!(src.source_media_type, "application/pdf");
    assert!(src.dated_from_printing);
    assert_eq!(src.source_sha256, gongwen::app::import::source_sha256(&bytes));
    running.stop().await.expect("stop");
}
