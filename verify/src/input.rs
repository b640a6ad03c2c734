//! Reading texts to detect: whole text files, standard input, or JSON Lines
//! with one record per line. Problems are reported per record with file,
//! line and field, so one bad line does not hide the others; an input that
//! cannot be read further (a directory, an I/O error, a JSONL file holding a
//! NUL byte, i.e. a binary file) ends with one error record naming it.
//!
//! Memory is bounded by [`ReadOptions::max_record_bytes`]: a reader never
//! holds more than the limit plus one byte of a record, and skips an
//! over-long JSONL line without keeping it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Default limit for one JSONL line or one text file, in bytes: 4 MiB.
///
/// Tokenizing a text takes about [`TOKENIZE_BYTES_PER_BYTE`] bytes of
/// memory per byte of text, and each worker thread holds at most one record
/// at a time, so the default bounds a thread at about 0.5 GB (measured:
/// 0.51 GB peak resident for one 4 MiB text, 1.0 GB for two at 2 threads).
/// Longer texts are refused, not split: splitting would change token ids at
/// the cut (BPE merges and pre-tokenization see across it).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 << 20;

/// Peak memory of tokenizing one text, in bytes per byte of text (measured
/// with the default model's tokenizer on English text: about 120).
pub const TOKENIZE_BYTES_PER_BYTE: usize = 125;

/// The UTF-8 byte order mark, stripped from the start of a JSONL file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// How an input is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// The whole input is one text.
    Text,
    /// One JSON object per line.
    Jsonl,
}

impl InputFormat {
    /// `.jsonl` / `.ndjson` files are JSON Lines; anything else is text.
    pub fn guess(name: &str) -> InputFormat {
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            InputFormat::Jsonl
        } else {
            InputFormat::Text
        }
    }
}

/// One text to detect, or why it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The record's `id` field, else `file:line` (JSONL) or the file name.
    pub id: String,
    /// The text, or an error naming file, line and field.
    pub text: Result<String, String>,
    /// Token ids given directly instead of text (`ids` JSONL field name).
    pub ids: Option<Vec<u32>>,
}

/// Options for reading records.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// JSONL field holding the text.
    pub field: String,
    /// Largest accepted line (JSONL) or file (text), in bytes; at most
    /// this plus one byte of a record is ever held.
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            field: "text".into(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// Where named inputs are read from when that is not the name itself.
///
/// An input's name labels it (record ids, the format guessed from its
/// extension, messages); its bytes are bound by SHA-256, not by path
/// (spec/report.md §4). A verifier handed a report's files under other
/// paths reads each from the file it was given while every name stays the
/// one the report records. Empty (the default): every input is read at its
/// name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locations(BTreeMap<String, PathBuf>);

impl Locations {
    /// No relocations: each input is read at its name.
    pub fn new() -> Locations {
        Locations::default()
    }

    /// Reads the input named `name` from `path`. Returns `false` (and keeps
    /// the first) when `name` is already placed at another path.
    pub fn insert(&mut self, name: &str, path: &Path) -> bool {
        match self.0.get(name) {
            Some(p) => p == path,
            None => {
                self.0.insert(name.to_string(), path.to_path_buf());
                true
            }
        }
    }

    /// The path the input named `name` is read from.
    pub fn path<'a>(&'a self, name: &'a str) -> &'a Path {
        self.0.get(name).map_or(Path::new(name), PathBuf::as_path)
    }
}

/// Streams the records of one input (`-` is standard input).
///
/// Never yields `Err`: a failure to read is an error record (see the module
/// docs) after which the input ends. The `io::Result` item is kept for
/// callers that collect with `?`.
pub struct RecordReader {
    name: String,
    format: InputFormat,
    reader: Box<dyn BufRead + Send>,
    line: usize,
    /// Bytes consumed so far (for the NUL byte's offset).
    offset: u64,
    done: bool,
    options: ReadOptions,
}

/// What [`read_line_bounded`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRead {
    /// Bytes consumed, newline included (0 at the end of the input).
    pub consumed: usize,
    /// The line was longer than the limit; it was not kept (`buf` is empty).
    pub too_long: bool,
    /// Offset in the input (counted from `offset`) of a NUL byte; reading
    /// stopped there, at the end of the chunk holding it.
    pub nul: Option<u64>,
}

/// Reads one line (newline included) from `reader` into `buf`, never
/// holding more than `limit` + 1 bytes of it: a longer line is consumed to
/// its newline without being kept. Stops early at a chunk holding a NUL
/// byte, which no text line holds (the input is binary: the caller should
/// stop reading it). `offset` counts the input's bytes consumed so far and
/// is advanced. Used by every reader of records and prompt files, so that
/// the same limit means the same memory everywhere.
///
/// Errors: the reader's own.
pub fn read_line_bounded(
    reader: &mut dyn BufRead,
    limit: usize,
    buf: &mut Vec<u8>,
    offset: &mut u64,
) -> io::Result<LineRead> {
    let mut read = LineRead {
        consumed: 0,
        too_long: false,
        nul: None,
    };
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read);
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if let Some(i) = chunk.iter().position(|&b| b == 0) {
            read.nul = Some(*offset + i as u64);
        }
        if !read.too_long && buf.len() + chunk.len() <= limit + 1 {
            buf.extend_from_slice(chunk);
        } else {
            read.too_long = true;
            buf.clear();
        }
        let n = chunk.len();
        read.consumed += n;
        *offset += n as u64;
        reader.consume(n);
        if found || read.nul.is_some() {
            return Ok(read);
        }
    }
}

/// `line` without a leading UTF-8 byte order mark (for the first line of
/// a JSONL file; editors on Windows write one).
pub fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(BOM).unwrap_or(line)
}

/// Whether `line` starts with a UTF-8 byte order mark.
pub fn starts_with_bom(line: &[u8]) -> bool {
    line.starts_with(BOM)
}

impl RecordReader {
    /// Opens `name` (a path, or `-` for stdin) in `format`.
    ///
    /// Errors: the file cannot be opened (missing, no permission). A
    /// directory opens; reading it yields an error record.
    pub fn open(name: &str, format: InputFormat, options: ReadOptions) -> io::Result<RecordReader> {
        RecordReader::open_at(name, Path::new(name), format, options)
    }

    /// Opens the input named `name` (ids and messages use it) from `path`
    /// (`-`: stdin) in `format`.
    pub fn open_at(
        name: &str,
        path: &Path,
        format: InputFormat,
        options: ReadOptions,
    ) -> io::Result<RecordReader> {
        let reader: Box<dyn BufRead + Send> = if path == Path::new("-") {
            Box::new(BufReader::new(io::stdin()))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, File::open(path)?))
        };
        Ok(RecordReader::from_reader(name, format, reader, options))
    }

    /// Reads records from any reader; `name` labels them.
    pub fn from_reader(
        name: &str,
        format: InputFormat,
        reader: Box<dyn BufRead + Send>,
        options: ReadOptions,
    ) -> RecordReader {
        RecordReader {
            name: if name == "-" {
                "<stdin>".into()
            } else {
                name.into()
            },
            format,
            reader,
            line: 0,
            offset: 0,
            done: false,
            options,
        }
    }

    /// The error record that ends an input which cannot be read further;
    /// `here` is the file name, or `file:line` for JSONL.
    fn unreadable(&mut self, here: String, e: &io::Error) -> Record {
        self.done = true;
        Record {
            id: here.clone(),
            text: Err(format!("{here}: cannot read: {e}")),
            ids: None,
        }
    }

    fn read_whole(&mut self) -> Record {
        self.done = true;
        let mut buf = Vec::new();
        let limit = self.options.max_record_bytes as u64;
        if let Err(e) = (&mut self.reader).take(limit + 1).read_to_end(&mut buf) {
            return self.unreadable(self.name.clone(), &e);
        }
        let text = if buf.len() as u64 > limit {
            Err(format!(
                "{}: larger than the {} byte limit (--max-record-bytes)",
                self.name, limit
            ))
        } else {
            // Spec §5: one leading byte order mark is the encoding's
            // signature, not text (as in a JSONL file); everything else,
            // CR, NUL and other control characters included, is text.
            let bom = if starts_with_bom(&buf) { BOM.len() } else { 0 };
            buf.drain(..bom);
            String::from_utf8(buf).map_err(|e| {
                format!(
                    "{}: not valid UTF-8 (first bad byte at offset {})",
                    self.name,
                    bom + e.utf8_error().valid_up_to()
                )
            })
        };
        Record {
            id: self.name.clone(),
            text,
            ids: None,
        }
    }

    fn next_jsonl(&mut self) -> Option<Record> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = self.options.max_record_bytes;
            let read = match read_line_bounded(&mut *self.reader, limit, &mut buf, &mut self.offset)
            {
                Ok(read) => read,
                Err(e) => {
                    let here = format!("{}:{}", self.name, self.line + 1);
                    return Some(self.unreadable(here, &e));
                }
            };
            if read.consumed == 0 {
                self.done = true;
                return None;
            }
            self.line += 1;
            let here = format!("{}:{}", self.name, self.line);
            if let Some(at) = read.nul {
                // JSON never holds a raw NUL byte: this is not a text file
                // (as ripgrep decides), so stop rather than skip through it.
                self.done = true;
                return Some(Record {
                    id: here.clone(),
                    text: Err(format!(
                        "{here}: binary file: NUL byte at byte offset {at}; not read further"
                    )),
                    ids: None,
                });
            }
            if read.too_long {
                return Some(Record {
                    id: here.clone(),
                    text: Err(format!(
                        "{here}: line longer than the {} byte limit (--max-record-bytes)",
                        self.options.max_record_bytes
                    )),
                    ids: None,
                });
            }
            let line = if self.line == 1 {
                strip_bom(&buf)
            } else {
                &buf[..]
            };
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let mut record = parse_jsonl_line(line, &here, &self.options.field);
            if starts_with_bom(line) {
                if let Err(e) = &mut record.text {
                    e.push_str(" (the line starts with a UTF-8 byte order mark, allowed only at the start of the file)");
                }
            }
            return Some(record);
        }
    }
}

/// Parses one JSON Lines record; `here` is `file:line`.
pub fn parse_jsonl_line(line: &[u8], here: &str, field: &str) -> Record {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Record {
                id: here.to_string(),
                text: Err(format!(
                    "{here}: malformed JSON at column {}: {e}",
                    e.column()
                )),
                ids: None,
            }
        }
    };
    let Some(obj) = value.as_object() else {
        return Record {
            id: here.to_string(),
            text: Err(format!("{here}: expected a JSON object")),
            ids: None,
        };
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => number_id(n),
        _ => here.to_string(),
    };
    let text = match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{here}: field {field:?} must be a string")),
        None => Err(format!("{here}: field {field:?} is missing")),
    };
    Record {
        id,
        text,
        ids: None,
    }
}

/// A numeric `id` as a record id (spec §5): an integer (that JSON parses
/// as one, within 64 bits) in decimal, any other number in its RFC 8785
/// form (ECMAScript shortest round-trip: `1.5`, `1000`, `1e+21`), so two
/// implementations name a record alike.
fn number_id(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    serde_jcs::to_string(n).unwrap_or_else(|_| n.to_string())
}

impl Iterator for RecordReader {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.format {
            InputFormat::Text => Some(Ok(self.read_whole())),
            InputFormat::Jsonl => self.next_jsonl().map(Ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: InputFormat, data: &[u8], max: usize) -> Vec<Record> {
        let reader = Box::new(io::Cursor::new(data.to_vec()));
        let options = ReadOptions {
            max_record_bytes: max,
            ..ReadOptions::default()
        };
        RecordReader::from_reader("in.jsonl", format, reader, options)
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn jsonl_records_and_errors_name_file_and_line() {
        let data = b"{\"id\":\"a\",\"text\":\"hello\"}\n\n{\"text\":1}\nnot json\n{\"other\":\"x\"}\n{\"id\":7,\"text\":\"\"}";
        let recs = read(InputFormat::Jsonl, data, 1000);
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0].id, "a");
        assert_eq!(recs[0].text.as_deref(), Ok("hello"));
        assert!(recs[1]
            .text
            .as_ref()
            .unwrap_err()
            .contains("in.jsonl:3: field \"text\" must be a string"));
        assert!(recs[2]
            .text
            .as_ref()
            .unwrap_err()
            .contains("in.jsonl:4: malformed JSON"));
        assert!(recs[3]
            .text
            .as_ref()
            .unwrap_err()
            .contains("in.jsonl:5: field \"text\" is missing"));
        assert_eq!(recs[4].id, "7");
        assert_eq!(recs[4].text.as_deref(), Ok(""));
    }

    #[test]
    fn huge_lines_are_refused_without_loading_them() {
        let mut data = b"{\"text\":\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', 10_000));
        data.extend_from_slice(b"\"}\n{\"text\":\"ok\"}\n");
        let recs = read(InputFormat::Jsonl, &data, 100);
        assert!(recs[0]
            .text
            .as_ref()
            .unwrap_err()
            .contains("in.jsonl:1: line longer"));
        assert_eq!(recs[1].text.as_deref(), Ok("ok"));
    }

    /// Spec §5: how the bytes of an input become the text that is
    /// tokenized, for plain-text inputs and JSONL fields alike.
    #[test]
    fn text_files_are_their_bytes_less_one_leading_bom() {
        let text = |data: &[u8]| read(InputFormat::Text, data, 1000)[0].text.clone();
        assert_eq!(text(b"\xef\xbb\xbfhello").as_deref(), Ok("hello"));
        assert_eq!(
            text(b"\xef\xbb\xbf\xef\xbb\xbfhi").as_deref(),
            Ok("\u{feff}hi"),
            "only one BOM is the signature; a second is text"
        );
        assert_eq!(text(b"a\xef\xbb\xbfb").as_deref(), Ok("a\u{feff}b"));
        assert_eq!(text(b"a\r\nb\r").as_deref(), Ok("a\r\nb\r"), "CR kept");
        assert_eq!(text(b"a\0b").as_deref(), Ok("a\0b"), "NUL is text");
        assert_eq!(text(b"").as_deref(), Ok(""));
        assert_eq!(text(b"\xef\xbb\xbf").as_deref(), Ok(""));
        let err = text(b"\xef\xbb\xbfab\xc3").unwrap_err();
        assert!(err.contains("offset 5"), "the file's offset: {err}");
    }

    #[test]
    fn jsonl_fields_are_their_decoded_strings() {
        let data = b"\xef\xbb\xbf{\"text\":\"a\\r\\nb\"}\r\n{\"text\":\"\\ufeffx\\u0000y\"}\n  \t\r\n{\"text\":\"\"}\n{\"text\":\"\\ud800\"}\n{\"text\":\"\xef\xbb\xbfz\"}";
        let recs = read(InputFormat::Jsonl, data, 1000);
        assert_eq!(recs.len(), 5, "the blank line is no record");
        assert_eq!(
            recs[0].text.as_deref(),
            Ok("a\r\nb"),
            "escapes decoded; CR LF ends the line"
        );
        assert_eq!(
            recs[1].text.as_deref(),
            Ok("\u{feff}x\0y"),
            "a BOM inside a string is text"
        );
        assert_eq!(recs[2].text.as_deref(), Ok(""));
        assert_eq!(
            recs[3].id, "in.jsonl:5",
            "physical lines, blank ones counted"
        );
        assert!(recs[3].text.is_err(), "an unpaired surrogate is no text");
        assert_eq!(recs[4].text.as_deref(), Ok("\u{feff}z"));
    }

    #[test]
    fn numeric_ids_are_written_as_integers_or_in_jcs_form() {
        let data = b"{\"id\":7,\"text\":\"\"}\n{\"id\":-3,\"text\":\"\"}\n{\"id\":1.5,\"text\":\"\"}\n{\"id\":1e3,\"text\":\"\"}\n{\"id\":1e21,\"text\":\"\"}\n{\"id\":18446744073709551615,\"text\":\"\"}\n{\"id\":null,\"text\":\"\"}\n{\"id\":true,\"text\":\"\"}";
        let ids: Vec<String> = read(InputFormat::Jsonl, data, 1000)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            ids,
            [
                "7",
                "-3",
                "1.5",
                "1000",
                "1e+21",
                "18446744073709551615",
                "in.jsonl:7",
                "in.jsonl:8"
            ]
        );
    }

    #[test]
    fn invalid_utf8_text_is_reported_with_offset() {
        let recs = read(InputFormat::Text, b"abc\xffdef", 1000);
        assert!(recs[0].text.as_ref().unwrap_err().contains("offset 3"));
        let recs = read(InputFormat::Jsonl, b"{\"text\":\"a\xff\"}\n", 1000);
        assert!(recs[0].text.as_ref().unwrap_err().contains("in.jsonl:1"));
    }
}
