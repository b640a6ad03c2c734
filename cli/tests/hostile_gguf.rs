//! The `provmark` binary on a suspect's hostile GGUF (issue #13 §4): every
//! command that opens the file (`tokenizer export --model`, `audit weights
//! --suspect`, `generate --model`) ends with exit 2 and one error naming
//! the file and the field, never a panic, an abort or a hang.

use std::path::{Path, PathBuf};
use std::process::Output;

use provmark_testkit::gguf::{tag, tiny_llama};
use provmark_testkit::lab::{Lab, LabBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_provmark");

fn handed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../llm/tests/data/hostile")
        .join(name)
}

fn lab() -> Lab {
    let lab = LabBuilder::new(BIN).build();
    std::fs::write(
        lab.join("t.jsonl"),
        "{\"id\":\"a\",\"text\":\"Hello world\"}\n",
    )
    .unwrap();
    std::fs::write(
        lab.join("p.jsonl"),
        "{\"id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}\n",
    )
    .unwrap();
    lab
}

/// The three commands that open `model`, each with its output.
fn open_with_every_command(lab: &Lab, model: &Path) -> Vec<(&'static str, Output)> {
    let m = model.to_str().unwrap();
    vec![
        (
            "tokenizer export",
            lab.run(&["tokenizer", "export", "--model", m, "--out", "x.json"]),
        ),
        (
            "audit weights",
            lab.run(&[
                "audit",
                "weights",
                "--suspect",
                m,
                "--texts",
                "t.jsonl",
                "--profile",
                "lab.profile.json",
                "--key",
                "lab.key",
            ]),
        ),
        (
            "generate",
            lab.run(&[
                "generate",
                "--model",
                m,
                "--no-watermark",
                "--prompts",
                "p.jsonl",
                "--max-tokens",
                "4",
                "--out",
                "out.jsonl",
            ]),
        ),
    ]
}

fn assert_refused(command: &str, out: &Output, model: &Path, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
    assert!(
        stderr.contains(&format!("{}: {message}", model.display())),
        "{command}: want {message:?}, got {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{command}: {stderr}"
    );
}

#[test]
fn alignment_zero() {
    let lab = lab();
    let model = handed("alignment_zero.gguf");
    for (command, out) in open_with_every_command(&lab, &model) {
        assert_refused(
            command,
            &out,
            &model,
            "not a valid GGUF file: metadata field general.alignment is 0; it must be a power of two from 1 to 65536",
        );
    }
}

#[test]
fn block_count_u32max() {
    let lab = lab();
    let model = handed("block_count_u32max.gguf");
    let runs = open_with_every_command(&lab, &model);
    // The tokenizer in it is sound: only the weights' hyper-parameters lie.
    assert_eq!(runs[0].1.status.code(), Some(0), "{:?}", runs[0].1);
    for (command, out) in &runs[1..] {
        assert_refused(
            command,
            out,
            &model,
            "metadata field llama.block_count is 4294967295 but the file holds tensors for 0 blocks (none)",
        );
    }
}

#[test]
fn embedding_dimensions_that_wrap() {
    let lab = lab();
    let mut w = tiny_llama(1);
    let t = w.tensor_mut("token_embd.weight");
    t.dims = vec![32, 1 << 59];
    t.data.clear();
    let model = lab.join("embd_dims_overflow.gguf");
    std::fs::write(&model, w.bytes()).unwrap();
    for (command, out) in open_with_every_command(&lab, &model) {
        assert_refused(
            command,
            &out,
            &model,
            "not a valid GGUF file: tensor token_embd.weight: dimensions [32, 576460752303423488] overflow",
        );
    }
}

#[test]
fn a_32_mib_metadata_array() {
    let lab = lab();
    let mut w = tiny_llama(1);
    let len: u64 = 32 << 20;
    let mut v = tag::U8.to_le_bytes().to_vec();
    v.extend(len.to_le_bytes());
    v.resize(v.len() + len as usize, 0);
    w.set_raw("general.padding", tag::ARRAY, v);
    let model = lab.join("big_array.gguf");
    std::fs::write(&model, w.bytes()).unwrap();
    for (command, out) in open_with_every_command(&lab, &model) {
        assert_refused(
            command,
            &out,
            &model,
            "not a valid GGUF file: metadata field general.padding: an array of 33554432 elements, more than the 1048576 allowed",
        );
    }
}

#[test]
fn truncated_and_mistyped_files() {
    let lab = lab();
    let bytes = tiny_llama(1).bytes();
    let model = lab.join("truncated.gguf");
    std::fs::write(&model, &bytes[..bytes.len() - 100]).unwrap();
    for (command, out) in open_with_every_command(&lab, &model) {
        assert_refused(
            command,
            &out,
            &model,
            "not a valid GGUF file: tensor blk.0.ffn_down.weight: 8192 bytes at data offset",
        );
    }
    let mut w = tiny_llama(1);
    w.tensor_mut("output_norm.weight").dtype = 99;
    let model = lab.join("unknown_type.gguf");
    std::fs::write(&model, w.bytes()).unwrap();
    for (command, out) in open_with_every_command(&lab, &model) {
        assert_refused(
            command,
            &out,
            &model,
            "not a valid GGUF file: tensor output_norm.weight: unknown or unsupported ggml type 99",
        );
    }
}

#[test]
fn a_template_that_never_ends_is_stopped() {
    let lab = lab();
    let mut w = tiny_llama(1);
    w.set_str(
        "tokenizer.chat_template",
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
    );
    let model = lab.join("hostile_template.gguf");
    std::fs::write(&model, w.bytes()).unwrap();
    let start = std::time::Instant::now();
    let out = lab.run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--no-watermark",
        "--prompts",
        "p.jsonl",
        "--max-tokens",
        "4",
        "--out",
        "out.jsonl",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "p.jsonl: prompt a: chat template: the template ran more than 2000000 instructions"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
