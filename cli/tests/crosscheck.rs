//! Two implementations of the spec check each other (issue #12): the
//! independent Python implementation of `spec/SPEC.md` and
//! `spec/report.md` (`spec/reference/report_ref.py`) recomputes every
//! member of reports this binary writes (detect with one and several
//! profiles, with and without windows; audit corpus with a filter and a
//! clean reference; kgw and synthid, and gumbel once its score is the
//! fixed-point one of revision 7), writes the same reports
//! itself for `provmark report verify`, and both sides must find a changed
//! count, a p-value moved outside the tolerance of report.md §4 and a
//! flipped verdict, and accept a p-value moved within it. The work is done
//! by `spec/reference/crosscheck.sh`, which CI also runs on its own.

use std::path::Path;
use std::process::Command;

/// Fails, saying how to install it, unless Python can import `module`.
fn require_python(module: &str, pin: &str) {
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status();
    assert!(
        have.is_ok_and(|s| s.success()),
        "this test needs Python's {module}: python3 -m pip install {pin}"
    );
}

#[test]
fn provmark_and_the_python_reference_verify_each_others_reports() {
    require_python("mpmath", "mpmath==1.3.0");
    require_python("tokenizers", "tokenizers==0.23.2");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/reference/crosscheck.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_provmark"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("crosscheck: all "), "{stdout}\n{stderr}");
    // Every case ran both ways, and every disagreement was looked for.
    for needle in [
        "detect-multi-windows: provmark's report recomputed by Python",
        "corpus-kgw-filter-reference: Python's report verified by provmark",
        "py detect-multi-windows: a flipped verdict is a MISMATCH on both sides",
        "pm corpus-kgw-filter-reference: a p-value moved within the tolerance still MATCHes",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{stdout}");
    }
}
