//! Evidence reports, whatever their bytes, never panic the parser; a report
//! that parses writes canonical bytes that parse again to the same content
//! digest.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = provmark_evidence::parse(text, "fuzz") else {
        return;
    };
    let canonical = report.canonical_file();
    let again = provmark_evidence::parse(&canonical, "fuzz")
        .expect("a report's canonical bytes parse as a report");
    assert_eq!(again.computed_digest(), report.computed_digest());
    assert_eq!(again.canonical_file(), canonical);
});
