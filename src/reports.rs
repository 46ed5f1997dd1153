//! Report files for auditors: tables rendered as CSV (UTF-8 with a byte-order mark, which spreadsheet programs
//! need to read Chinese) or as .xlsx with real date cells. Pure: a table in, bytes out.
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike, Utc};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Date(NaiveDate),
    /// Shown in China Standard Time.
    Time(DateTime<Utc>),
    Empty,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<u32> for Cell {
    fn from(n: u32) -> Cell {
        Cell::Number(f64::from(n))
    }
}

/// A titled table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Sheet name (at most 31 characters in a workbook).
    pub title: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows, each as long as `headers`.
    pub rows: Vec<Vec<Cell>>,
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the spreadsheet: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write the CSV: {0}")]
    Io(#[from] std::io::Error),
}

fn cst(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    match FixedOffset::east_opt(8 * 3600) {
        Some(o) => t.with_timezone(&o),
        None => t.fixed_offset(),
    }
}

fn text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Number(n) => n.to_string(),
        Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        Cell::Time(t) => cst(*t).format("%Y-%m-%d %H:%M:%S").to_string(),
        Cell::Empty => String::new(),
    }
}

/// CSV with a byte-order mark and a header row.
pub fn csv(table: &Table) -> Result<Vec<u8>, ReportError> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record(&table.headers)?;
        for row in &table.rows {
            w.write_record(row.iter().map(text))?;
        }
        w.flush()?;
    }
    Ok(out)
}

/// A one-sheet workbook: bold headers, dates as Excel dates, times in China Standard Time.
pub fn xlsx(table: &Table) -> Result<Vec<u8>, ReportError> {
    let mut wb = Workbook::new();
    let sheet = wb.add_worksheet();
    let title: String = table.title.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
    sheet.set_name(if title.is_empty() { "report" } else { &title })?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    for (c, h) in table.headers.iter().enumerate() {
        let col = u16::try_from(c).unwrap_or(u16::MAX);
        sheet.write_string_with_format(0, col, h, &bold)?;
        sheet.set_column_width(col, 16)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            match cell {
                Cell::Text(s) => {
                    sheet.write_string(r, c, s)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(r, c, *n)?;
                }
                Cell::Date(d) => {
                    let x = ExcelDateTime::from_ymd(
                        u16::try_from(d.year()).unwrap_or(1900),
                        d.month() as u8,
                        d.day() as u8,
                    )?;
                    sheet.write_date_with_format(r, c, &x, &date)?;
                }
                Cell::Time(t) => {
                    let l = cst(*t);
                    let x = ExcelDateTime::from_ymd(
                        u16::try_from(l.year()).unwrap_or(1900),
                        l.month() as u8,
                        l.day() as u8,
                    )?
                    .and_hms(l.hour() as u16, l.minute() as u8, l.second())?;
                    sheet.write_datetime_with_format(r, c, &x, &time)?;
                }
                Cell::Empty => {}
            }
        }
    }
    Ok(wb.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            title: "矩阵".into(),
            headers: vec!["单位".into(), "数量".into(), "截止日期".into()],
            rows: vec![vec![
                "淄博市财政局, 办公室".into(),
                Cell::Number(3.0),
                Cell::Date(NaiveDate::from_ymd_opt(2022, 11, 30).unwrap_or_default()),
            ]],
        }
    }

    #[test]
    fn csv_has_a_bom_headers_and_quotes() {
        let bytes = csv(&table()).expect("csv");
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("单位,数量,截止日期"));
        assert!(text.contains("\"淄博市财政局, 办公室\",3,2022-11-30"));
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let bytes = xlsx(&table()).expect("xlsx");
        assert!(bytes.starts_with(b"PK"));
    }
}
