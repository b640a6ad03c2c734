//! Untrusted inputs (issue #13 §5–6): the record reader holds at most the
//! record limit, stops at binary (NUL-holding) JSONL input instead of
//! skipping through it forever, strips a BOM on line 1, and reports an
//! input it cannot read (a directory) as one error record.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use provmark_verify::input::{
    read_line_bounded, InputFormat, ReadOptions, Record, RecordReader, DEFAULT_MAX_RECORD_BYTES,
    TOKENIZE_BYTES_PER_BYTE,
};

/// A reader that counts the bytes taken from it.
struct Counting<R> {
    inner: R,
    taken: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn reader(
    format: InputFormat,
    inner: impl Read + Send + 'static,
    max: usize,
) -> (RecordReader, Arc<AtomicU64>) {
    let taken = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner,
        taken: taken.clone(),
    };
    let options = ReadOptions {
        max_record_bytes: max,
        ..ReadOptions::default()
    };
    let buffered: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(4096, counting));
    (
        RecordReader::from_reader("in", format, buffered, options),
        taken,
    )
}

fn all(r: RecordReader) -> Vec<Record> {
    r.map(|r| r.expect("the reader never yields Err")).collect()
}

fn error(r: &Record) -> &str {
    r.text.as_deref().expect_err("an error record")
}

#[test]
fn the_default_limit_bounds_a_thread_at_about_half_a_gigabyte() {
    assert_eq!(DEFAULT_MAX_RECORD_BYTES, 4 << 20);
    // What --help and the README state per thread.
    let per_thread = DEFAULT_MAX_RECORD_BYTES * TOKENIZE_BYTES_PER_BYTE;
    assert!(per_thread <= 600_000_000, "{per_thread}");
}

#[test]
fn an_endless_text_is_refused_after_reading_the_limit_plus_one_byte() {
    let (r, taken) = reader(InputFormat::Text, io::repeat(b'a'), 100_000);
    let recs = all(r);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        error(&recs[0]),
        "in: larger than the 100000 byte limit (--max-record-bytes)"
    );
    // The limit + 1 bytes, plus at most one buffer's read ahead.
    assert!(taken.load(Ordering::Relaxed) <= 100_001 + 4096);
}

#[test]
fn an_endless_run_of_nul_bytes_in_jsonl_ends_as_a_binary_file() {
    // /dev/zero read as JSONL: one long line with no newline, skipped for
    // ever before; now the first NUL ends the input.
    let (r, taken) = reader(InputFormat::Jsonl, io::repeat(0), 1000);
    let recs = all(r);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].id, "in:1");
    assert_eq!(
        error(&recs[0]),
        "in:1: binary file: NUL byte at byte offset 0; not read further"
    );
    assert!(taken.load(Ordering::Relaxed) <= 4096);
}

#[test]
fn a_nul_byte_after_good_lines_keeps_them_and_names_its_offset() {
    let data =
        b"{\"text\":\"one\"}\n{\"text\":\"two\"}\nab\0cd\n{\"text\":\"never read\"}\n".to_vec();
    let (r, _) = reader(InputFormat::Jsonl, io::Cursor::new(data), 1000);
    let recs = all(r);
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert_eq!(recs[0].text.as_deref(), Ok("one"));
    assert_eq!(recs[1].text.as_deref(), Ok("two"));
    assert_eq!(
        error(&recs[2]),
        "in:3: binary file: NUL byte at byte offset 32; not read further"
    );
}

#[test]
fn a_nul_byte_inside_an_over_long_line_still_stops_the_skip() {
    let mut data = vec![b'x'; 50_000];
    data.push(0);
    let (r, taken) = reader(
        InputFormat::Jsonl,
        io::Cursor::new(data).chain(io::repeat(b'y')),
        1000,
    );
    let recs = all(r);
    assert_eq!(recs.len(), 1);
    assert!(error(&recs[0]).contains("NUL byte at byte offset 50000"));
    assert!(taken.load(Ordering::Relaxed) <= 50_001 + 4096);
}

#[test]
fn an_over_long_line_is_skipped_without_being_held() {
    let mut data = b"{\"text\":\"".to_vec();
    data.extend(std::iter::repeat_n(b'x', 1 << 20));
    data.extend_from_slice(b"\"}\n{\"text\":\"after\"}\n");
    let mut buf = Vec::new();
    let mut offset = 0;
    let mut cursor = BufReader::with_capacity(4096, io::Cursor::new(data));
    let read = read_line_bounded(&mut cursor, 1000, &mut buf, &mut offset).unwrap();
    assert!(read.too_long);
    assert!(buf.is_empty() && buf.capacity() <= 1001 + 4096);
    assert_eq!(offset, (1 << 20) + 12);
    let read = read_line_bounded(&mut cursor, 1000, &mut buf, &mut offset).unwrap();
    assert!(!read.too_long);
    assert_eq!(buf, b"{\"text\":\"after\"}\n");
}

#[test]
fn a_bom_on_line_one_is_stripped_and_named_elsewhere() {
    let data = b"\xef\xbb\xbf{\"text\":\"first\"}\n\xef\xbb\xbf{\"text\":\"second\"}\n".to_vec();
    let (r, _) = reader(InputFormat::Jsonl, io::Cursor::new(data), 1000);
    let recs = all(r);
    assert_eq!(recs[0].text.as_deref(), Ok("first"));
    let e = error(&recs[1]);
    assert!(
        e.starts_with("in:2: malformed JSON") && e.contains("UTF-8 byte order mark"),
        "{e}"
    );
    // A file holding only a BOM has no records.
    let (r, _) = reader(
        InputFormat::Jsonl,
        io::Cursor::new(b"\xef\xbb\xbf\n".to_vec()),
        10,
    );
    assert!(all(r).is_empty());
}

#[test]
fn a_directory_is_one_error_record_naming_it() {
    let dir = std::env::temp_dir().join(format!("provmark-inputs-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = dir.display().to_string();
    for (format, id) in [
        (InputFormat::Text, name.clone()),
        (InputFormat::Jsonl, format!("{name}:1")),
    ] {
        let r = RecordReader::open(&name, format, ReadOptions::default()).unwrap();
        let recs = all(r);
        assert_eq!(recs.len(), 1, "{format:?}");
        assert_eq!(recs[0].id, id);
        let e = error(&recs[0]);
        assert!(
            e.starts_with(&format!("{id}: cannot read: ")) && e.contains("directory"),
            "{e}"
        );
    }
}
