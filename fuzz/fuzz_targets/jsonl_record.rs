//! JSONL records and whole inputs never panic the reader, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use provmark_verify::input::{parse_jsonl_line, InputFormat, ReadOptions, RecordReader};

fuzz_target!(|data: &[u8]| {
    let _ = parse_jsonl_line(data, "fuzz:1", "text");
    let options = ReadOptions {
        max_record_bytes: 256,
        ..ReadOptions::default()
    };
    for format in [InputFormat::Jsonl, InputFormat::Text] {
        let reader = Box::new(std::io::Cursor::new(data.to_vec()));
        for record in RecordReader::from_reader("fuzz", format, reader, options.clone()) {
            let _ = record.expect("in-memory reads do not fail");
        }
    }
});
