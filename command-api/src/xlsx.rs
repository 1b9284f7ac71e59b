//! A minimal XLSX writer: SpreadsheetML sheets of typed cells in a stored (uncompressed) zip.
//!
//! Numbers are `<c t="n">` cells holding the exact decimal text, times are numbers (days since
//! 1899-12-30, the spreadsheet epoch) shown with a date-time style, and text is an inline
//! string, so LibreOffice and Excel open a report whose amounts add up without conversion. The
//! archive is deterministic: every entry is dated 1980-01-01 and stored with its CRC-32.
//! Limits: at most [`MAX_ROWS`] rows per sheet and [`MAX_COLUMNS`] columns (asserted: callers
//! bound their reports first), so no offset passes the zip's 32 bits.

use std::fmt::Write as _;

use ledger_core::Timestamp;
use rust_decimal::Decimal;

/// Most rows a sheet holds (the format allows 1,048,576).
pub const MAX_ROWS: usize = 1_000_000;
/// Most columns a row holds (A to Z).
pub const MAX_COLUMNS: usize = 26;

/// The media type of a workbook.
pub const CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One cell's value and its type.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// An exact decimal, written as its text (`t="n"`).
    Number(Decimal),
    /// A time, written as a number of days with the date-time style.
    Time(Timestamp),
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::Text(text.to_owned())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::Text(text)
    }
}

impl From<Decimal> for Cell {
    fn from(d: Decimal) -> Cell {
        Cell::Number(d)
    }
}

/// A named sheet of rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Sheet {
    name: String,
    rows: Vec<Vec<Cell>>,
}

impl Sheet {
    /// A sheet named `name` (1 to 31 characters, none of `[]:*?/\`; asserted: names are ours).
    pub fn new(name: &str) -> Sheet {
        assert!(
            (1..=31).contains(&name.chars().count()) && !name.contains(['[', ']', ':', '*', '?', '/', '\\']),
            "sheet name {name:?}"
        );
        Sheet { name: name.to_owned(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        assert!(self.rows.len() < MAX_ROWS, "a sheet holds at most {MAX_ROWS} rows");
        assert!(row.len() <= MAX_COLUMNS, "a row holds at most {MAX_COLUMNS} cells");
        self.rows.push(row);
    }

    pub fn rows(&self) -> &[Vec<Cell>] {
        &self.rows
    }
}

/// The workbook of `sheets` (at least one), as the bytes of an `.xlsx` file.
pub fn workbook(sheets: &[Sheet]) -> Vec<u8> {
    assert!(!sheets.is_empty(), "a workbook has a sheet");
    let mut zip = Zip::default();
    zip.add("[Content_Types].xml", content_types(sheets.len()).as_bytes());
    zip.add("_rels/.rels", ROOT_RELS.as_bytes());
    zip.add("xl/workbook.xml", workbook_xml(sheets).as_bytes());
    zip.add("xl/_rels/workbook.xml.rels", workbook_rels(sheets.len()).as_bytes());
    zip.add("xl/styles.xml", STYLES.as_bytes());
    for (i, sheet) in sheets.iter().enumerate() {
        zip.add(&format!("xl/worksheets/sheet{}.xml", i + 1), sheet_xml(sheet).as_bytes());
    }
    zip.finish()
}

const XML: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

const ROOT_RELS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId1" "#,
    r#"Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" "#,
    r#"Target="xl/workbook.xml"/></Relationships>"#
);

/// Style 0: general; style 1: a time (`yyyy-mm-dd hh:mm:ss`); style 2: bold, for headers.
const STYLES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#,
    r#"<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\-mm\-dd\ hh:mm:ss"/></numFmts>"#,
    r#"<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>"#,
    r#"<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>"#,
    r#"<fills count="2"><fill><patternFill patternType="none"/></fill>"#,
    r#"<fill><patternFill patternType="gray125"/></fill></fills>"#,
    r#"<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>"#,
    r#"<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>"#,
    r#"<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>"#,
    r#"<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    r#"<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>"#,
    r#"<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>"#,
    r#"</styleSheet>"#
);

const TIME_STYLE: u8 = 1;
const HEADER_STYLE: u8 = 2;

fn content_types(sheets: usize) -> String {
    let mut out = format!(
        "{XML}<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
         <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
         <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
         <Override PartName=\"/xl/workbook.xml\" \
         ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
         <Override PartName=\"/xl/styles.xml\" \
         ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>"
    );
    for i in 1..=sheets {
        let _ = write!(
            out,
            "<Override PartName=\"/xl/worksheets/sheet{i}.xml\" \
             ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
        );
    }
    out.push_str("</Types>");
    out
}

fn workbook_xml(sheets: &[Sheet]) -> String {
    let mut out = format!("{XML}<workbook xmlns=\"{MAIN_NS}\" xmlns:r=\"{REL_NS}\"><sheets>");
    for (i, sheet) in sheets.iter().enumerate() {
        let n = i + 1;
        let _ = write!(out, "<sheet name=\"{}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>", escape(&sheet.name));
    }
    out.push_str("</sheets></workbook>");
    out
}

fn workbook_rels(sheets: usize) -> String {
    let mut out =
        format!("{XML}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">");
    for n in 1..=sheets {
        let _ =
            write!(out, "<Relationship Id=\"rId{n}\" Type=\"{REL_NS}/worksheet\" Target=\"worksheets/sheet{n}.xml\"/>");
    }
    let _ = write!(
        out,
        "<Relationship Id=\"rId{}\" Type=\"{REL_NS}/styles\" Target=\"styles.xml\"/></Relationships>",
        sheets + 1
    );
    out
}

/// The first row of every sheet is its header, in bold.
fn sheet_xml(sheet: &Sheet) -> String {
    let mut out = format!("{XML}<worksheet xmlns=\"{MAIN_NS}\">");
    if sheet.rows.iter().any(|r| r.iter().any(|c| matches!(c, Cell::Time(_)))) {
        out.push_str("<cols><col min=\"1\" max=\"1\" width=\"20\" customWidth=\"1\"/></cols>");
    }
    out.push_str("<sheetData>");
    for (r, row) in sheet.rows.iter().enumerate() {
        let number = r + 1;
        let _ = write!(out, "<row r=\"{number}\">");
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{number}", column(c));
            let style = if r == 0 { format!(" s=\"{HEADER_STYLE}\"") } else { String::new() };
            match cell {
                Cell::Empty => {}
                Cell::Text(text) => {
                    let _ = write!(
                        out,
                        "<c r=\"{at}\"{style} t=\"inlineStr\"><is><t xml:space=\"preserve\">{}</t></is></c>",
                        escape(text)
                    );
                }
                Cell::Number(d) => {
                    let _ = write!(out, "<c r=\"{at}\"{style} t=\"n\"><v>{}</v></c>", d.normalize());
                }
                Cell::Time(t) => {
                    let _ = write!(out, "<c r=\"{at}\" s=\"{TIME_STYLE}\" t=\"n\"><v>{}</v></c>", serial(*t));
                }
            }
        }
        out.push_str("</row>");
    }
    out.push_str("</sheetData></worksheet>");
    out
}

/// `A` for the first column (at most `Z`: `MAX_COLUMNS`).
fn column(index: usize) -> char {
    char::from(b'A' + u8::try_from(index).expect("at most MAX_COLUMNS columns"))
}

/// A time as the spreadsheet's serial number: days since 1899-12-30 (UTC), the fraction to the
/// microsecond's nearest 1e-11 of a day.
pub fn serial(t: Timestamp) -> Decimal {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    const EPOCH_DAYS: i64 = 25_569; // 1970-01-01
    let days = t.0.div_euclid(MICROS_PER_DAY) + EPOCH_DAYS;
    let fraction = Decimal::from(t.0.rem_euclid(MICROS_PER_DAY)) / Decimal::from(MICROS_PER_DAY);
    (Decimal::from(days) + fraction.round_dp(11)).normalize()
}

/// XML text: markup characters escaped, characters XML cannot hold dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
/// 1980-01-01 00:00 in MS-DOS form: the archive does not depend on the clock.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

/// A zip archive of stored entries.
#[derive(Default)]
struct Zip {
    out: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

impl Zip {
    fn add(&mut self, name: &str, data: &[u8]) {
        let offset = u32::try_from(self.out.len()).expect("an archive under 4 GiB");
        let size = u32::try_from(data.len()).expect("an entry under 4 GiB");
        let name_len = u16::try_from(name.len()).expect("a short entry name");
        let crc = CRC32.checksum(data);
        // Local file header: version 2.0, flag 11 (UTF-8 names), method 0 (stored).
        let out = &mut self.out;
        put32(out, 0x0403_4b50);
        for v in [20, 0x0800, 0, DOS_TIME, DOS_DATE] {
            put16(out, v);
        }
        for v in [crc, size, size] {
            put32(out, v);
        }
        put16(out, name_len);
        put16(out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory entry.
        let c = &mut self.central;
        put32(c, 0x0201_4b50);
        for v in [20, 20, 0x0800, 0, DOS_TIME, DOS_DATE] {
            put16(c, v);
        }
        for v in [crc, size, size] {
            put32(c, v);
        }
        for v in [name_len, 0, 0, 0, 0] {
            put16(c, v);
        }
        put32(c, 0);
        put32(c, offset);
        c.extend_from_slice(name.as_bytes());
        self.entries += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        let start = u32::try_from(self.out.len()).expect("an archive under 4 GiB");
        let size = u32::try_from(self.central.len()).expect("a directory under 4 GiB");
        self.out.append(&mut self.central);
        let out = &mut self.out;
        put32(out, 0x0605_4b50);
        for v in [0, 0, self.entries, self.entries] {
            put16(out, v);
        }
        put32(out, size);
        put32(out, start);
        put16(out, 0);
        self.out
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// The stored entries of an archive, each checked against its CRC-32.
    fn entries(zip: &[u8]) -> Vec<(String, String)> {
        let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
        let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
        let end = zip.len() - 22;
        assert_eq!(u32_at(end), 0x0605_4b50);
        let (count, mut at) = (u16_at(end + 10), u32_at(end + 16) as usize);
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(at), 0x0201_4b50);
            let (crc, size, name_len, local) =
                (u32_at(at + 16), u32_at(at + 20) as usize, u16_at(at + 28), u32_at(at + 42) as usize);
            let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
            assert_eq!(u32_at(local), 0x0403_4b50);
            assert_eq!(u16_at(local + 8), 0, "stored");
            let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
            let data = &zip[data_at..data_at + size];
            assert_eq!(CRC32.checksum(data), crc, "{name}");
            out.push((name, String::from_utf8(data.to_vec()).unwrap()));
            at += 46 + name_len;
        }
        out
    }

    #[test]
    fn a_workbook_is_a_stored_zip_of_typed_cells() {
        let mut sheet = Sheet::new("Movements");
        sheet.push(vec!["At".into(), "Amount".into(), "Note".into()]);
        sheet.push(vec![
            Cell::Time(Timestamp(86_400_000_000 + 43_200_000_000)),
            Decimal::from_str("-12.50").unwrap().into(),
            "a < b & \"c\"\u{1}".into(),
        ]);
        sheet.push(vec![Cell::Empty, Decimal::from_str("1000000.01").unwrap().into()]);
        let bytes = workbook(&[sheet.clone(), Sheet::new("Summary")]);
        assert_eq!(bytes, workbook(&[sheet, Sheet::new("Summary")]), "deterministic");
        let files = entries(&bytes);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "[Content_Types].xml",
                "_rels/.rels",
                "xl/workbook.xml",
                "xl/_rels/workbook.xml.rels",
                "xl/styles.xml",
                "xl/worksheets/sheet1.xml",
                "xl/worksheets/sheet2.xml"
            ]
        );
        let sheet1 = &files[5].1;
        assert!(sheet1.contains(r#"<c r="A2" s="1" t="n"><v>25570.5</v></c>"#), "{sheet1}");
        assert!(sheet1.contains(r#"<c r="B2" t="n"><v>-12.5</v></c>"#), "{sheet1}");
        assert!(sheet1.contains("a &lt; b &amp; &quot;c&quot;</t>"), "{sheet1}");
        assert!(sheet1.contains(r#"<c r="B3" t="n"><v>1000000.01</v></c>"#), "{sheet1}");
        assert!(sheet1.contains(r#"<c r="A1" s="2" t="inlineStr">"#), "{sheet1}");
        assert!(files[2].1.contains(r#"<sheet name="Summary" sheetId="2" r:id="rId2"/>"#));
        assert!(files[3].1.contains(r#"Id="rId3""#) && files[3].1.contains("styles.xml"));
    }

    #[test]
    fn times_are_days_since_the_spreadsheet_epoch() {
        assert_eq!(serial(Timestamp(0)), Decimal::from(25_569));
        assert_eq!(serial(Timestamp(-86_400_000_000)), Decimal::from(25_568));
        // 2026-12-07T06:00:00Z
        assert_eq!(serial(Timestamp(1_796_623_200_000_000)), Decimal::from_str("46363.25").unwrap());
        assert_eq!(column(0), 'A');
        assert_eq!(column(25), 'Z');
    }
}
