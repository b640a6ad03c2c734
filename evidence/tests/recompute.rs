//! In-process recomputation (`provmark_evidence::recompute`): a report made
//! through a recipe verifies MATCH from its keys and files alone, without
//! running any program; an edited number, a forged parameter, an unknown
//! command, parameter or input role are caught.

use std::path::{Path, PathBuf};

use provmark_evidence::{
    recompute, verify, AuditSettings, CorpusRecipe, DetectRecipe, Error, Keyed, MergeRecipe, Report,
};
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::key;
use provmark_verify::corpus::Shard;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Key, Profile, Scheme, SynthIdParams};
use serde_json::json;

struct Lab {
    dir: tempfile::TempDir,
    key: Key,
    profile: Profile,
}

impl Lab {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn keyed(&self) -> Keyed<'_> {
        Keyed {
            profile: self.profile.clone(),
            key: &self.key,
            profile_name: "lab.profile.json".into(),
            key_name: "lab.key".into(),
        }
    }
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let json = train_bpe_json(&docs_corpus(), 1024);
    std::fs::write(dir.path().join("tokenizer.json"), &json).unwrap();
    let tokenizer = TextTokenizer::from_bytes(json.as_bytes(), "t").unwrap();
    let key = key(7);
    std::fs::write(dir.path().join("lab.key"), key.to_hex_file()).unwrap();
    let scheme = Scheme::SynthId(SynthIdParams::new(30).unwrap());
    let profile = Profile::new(scheme, 2, tokenizer.digest().clone(), &key).unwrap();
    let docs = docs_corpus();
    let paragraphs: Vec<&str> = docs.split("\n\n").filter(|p| p.len() > 200).collect();
    let jsonl = |r: std::ops::Range<usize>| -> String {
        paragraphs[r]
            .iter()
            .map(|p| format!("{}\n", json!({ "text": p })))
            .collect()
    };
    std::fs::write(dir.path().join("texts.jsonl"), jsonl(0..12)).unwrap();
    std::fs::write(dir.path().join("more.jsonl"), jsonl(12..20)).unwrap();
    Lab { dir, key, profile }
}

fn detect<'a>(lab: &'a Lab) -> DetectRecipe<'a> {
    DetectRecipe {
        locations: Default::default(),
        alpha: 1e-6,
        field: "text".into(),
        max_record_bytes: 1 << 20,
        window_min: 16,
        jsonl: false,
        windows: true,
        force_tokenizer: false,
        normalization: Default::default(),
        profiles: vec![lab.keyed()],
        tokenizers: vec![lab.path("tokenizer.json")],
        model: None,
        inputs: vec![lab.path("texts.jsonl"), lab.path("more.jsonl")],
    }
}

fn corpus<'a>(lab: &'a Lab) -> CorpusRecipe<'a> {
    CorpusRecipe {
        locations: Default::default(),
        settings: AuditSettings {
            alpha: 0.01,
            null_keys: 99,
            null_seed: 3,
            field: "text".into(),
            normalize: Default::default(),
        },
        lab: lab.keyed(),
        tokenizer: Some(lab.path("tokenizer.json")),
        model: None,
        filter_from: vec![lab.path("more.jsonl")],
        reference: vec![lab.path("more.jsonl")],
        inputs: vec![lab.path("texts.jsonl")],
    }
}

/// The verifier's view: the key file and the report's files, in its order.
fn given(lab: &Lab, report: &Report) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let inputs = report
        .inputs
        .iter()
        .map(|i| PathBuf::from(&i.name))
        .collect();
    let keys = report
        .keyed_profiles()
        .map(|_| PathBuf::from(lab.path("lab.key")))
        .collect();
    (keys, inputs)
}

fn verified(lab: &Lab, report: &Report) -> provmark_evidence::VerifyOutcome {
    let (keys, inputs) = given(lab, report);
    verify(report, &keys, &inputs, None, &recompute).unwrap()
}

#[test]
fn detect_and_audit_reports_verify_in_process() {
    let lab = lab();
    let report = detect(&lab).compute().unwrap();
    assert_eq!(report.command.name, "detect");
    let out = verified(&lab, &report);
    assert!(out.matched(), "{:?}", out.differences);
    assert!(out.recomputed);

    let report = corpus(&lab).compute().unwrap();
    let out = verified(&lab, &report);
    assert!(out.matched(), "{:?}", out.differences);
    assert_eq!(report.results["key_swap"]["keys"], 99);
}

/// Writes the partial of each of `n` shards of `recipe`'s audit.
fn shard_partials(lab: &Lab, recipe: &CorpusRecipe<'_>, n: u32, tag: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for i in 0..n {
        let config = recipe.config(
            recipe.tokenizer(&mut |_| {}).unwrap(),
            Shard::new(i, n).unwrap(),
        );
        let mut totals = provmark_audit::corpus::run(
            &recipe.lab.lab().unwrap(),
            &config,
            &provmark_audit::Silent,
        )
        .unwrap()
        .suspect;
        totals.binding = Some(recipe.binding().unwrap());
        let path = lab.path(&format!("{tag}{i}.json"));
        std::fs::write(&path, serde_json::to_string(&totals).unwrap()).unwrap();
        parts.push(path);
    }
    parts
}

fn merge_of(lab: &Lab, parts: Vec<String>) -> MergeRecipe {
    MergeRecipe {
        alpha: 0.01,
        profile: lab.profile.clone(),
        profile_name: "lab.profile.json".into(),
        parts,
        locations: Default::default(),
    }
}

#[test]
fn merged_shards_verify_from_the_corpus_files() {
    let lab = lab();
    // Shards take no reference (the CLI refuses --reference with --shard).
    let recipe = CorpusRecipe {
        reference: Vec::new(),
        ..corpus(&lab)
    };
    let parts = shard_partials(&lab, &recipe, 3, "part");
    let report = merge_of(&lab, parts.clone()).compute().unwrap();
    // The merged report binds the key and the corpus files, not only the partials.
    assert!(report.profiles[0].key_commitment.is_some());
    let roles: Vec<&str> = report.inputs.iter().map(|i| i.role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "tokenizer",
            "filter",
            "input",
            "partial",
            "partial",
            "partial"
        ]
    );
    assert_eq!(report.parameters["shards"], 3);
    let out = verified(&lab, &report);
    assert!(out.matched(), "{:?}", out.differences);
    // The merged statistic is the whole corpus's.
    let whole = recipe.compute().unwrap();
    assert_eq!(report.results["statistic"], whole.results["statistic"]);
    assert_eq!(report.results["key_swap"], whole.results["key_swap"]);

    // The handed case: 3,000 added to one shard's statistic turned plain
    // text into "attributed". The merge adds it up, but the report is
    // recomputed from the corpus files, so verification names the lie.
    let text = std::fs::read_to_string(&parts[1]).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&text).unwrap();
    forged["statistic"] = json!(forged["statistic"].as_f64().unwrap() + 3000.0);
    std::fs::write(&parts[1], forged.to_string()).unwrap();
    let report = merge_of(&lab, parts.clone()).compute().unwrap();
    let out = verified(&lab, &report);
    let paths: Vec<String> = out.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(
        paths[0].starts_with(&format!(
            "partial {}: shard 1/3 recomputed from the corpus files differs: statistic:",
            parts[1]
        )),
        "{paths:?}"
    );
    // A merged report must name one partial per shard: fewer, or files
    // that are not this audit's shards, are refused before computing.
    let honest = merge_of(&lab, shard_partials(&lab, &recipe, 3, "again"))
        .compute()
        .unwrap();
    let (keys, mut inputs) = given(&lab, &honest);
    let n = inputs.len();
    inputs[n - 1] = inputs[n - 3].clone();
    let out = verify(&honest, &keys, &inputs, None, &recompute).unwrap();
    assert!(
        out.differences
            .iter()
            .any(|d| matches!(d, provmark_evidence::Difference::InputDigest { .. })),
        "{:?}",
        out.differences
    );
    let mut fewer = honest.clone();
    fewer.inputs.pop();
    fewer.inputs_merkle_root = provmark_evidence::merkle_root(
        &fewer
            .inputs
            .iter()
            .map(|i| {
                let mut d = [0u8; 32];
                for (k, b) in d.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&i.sha256[2 * k..2 * k + 2], 16).unwrap();
                }
                d
            })
            .collect::<Vec<_>>(),
    );
    fewer.digest = fewer.computed_digest();
    let (keys, inputs) = given(&lab, &fewer);
    let out = verify(&fewer, &keys, &inputs, None, &recompute).unwrap();
    let lines: Vec<String> = out.differences.iter().map(|d| d.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("records 2 partial file(s) for 3 shards")),
        "{lines:?}"
    );

    // A shard of another corpus (same counts or not) is refused by the merge.
    let other = CorpusRecipe {
        inputs: vec![lab.path("more.jsonl")],
        ..recipe
    };
    let mut mixed = shard_partials(&lab, &other, 3, "other");
    mixed[1] = parts[1].clone();
    let e = merge_of(&lab, mixed).compute().unwrap_err();
    assert!(e.to_string().contains("come from different audits"), "{e}");
}

#[test]
fn edited_results_and_forged_parameters_are_mismatches() {
    let lab = lab();
    let report = detect(&lab).compute().unwrap();
    // A forger who edits a number and fixes the digest.
    let mut forged = report.clone();
    forged.results["texts"][2]["log10_p"] = json!(-42.0);
    forged.digest = forged.computed_digest();
    let out = verified(&lab, &forged);
    assert!(!out.matched());
    let shown: Vec<String> = out.differences.iter().map(|d| d.to_string()).collect();
    assert!(
        shown
            .iter()
            .any(|d| d.starts_with("results.texts[2].log10_p")),
        "{shown:?}"
    );
    // A forged level is recomputed as given: every verdict moves, and the
    // replay line recorded for people no longer matches it.
    let mut forged = report.clone();
    forged.parameters.insert("alpha".into(), json!(0.9));
    forged.digest = forged.computed_digest();
    let out = verified(&lab, &forged);
    let shown: Vec<String> = out.differences.iter().map(|d| d.to_string()).collect();
    assert!(
        shown.iter().any(|d| d.starts_with("command.replay")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|d| d.starts_with("decision.alpha")),
        "{shown:?}"
    );
}

#[test]
fn only_recorded_commands_parameters_and_roles_are_recomputed() {
    let lab = lab();
    let report = detect(&lab).compute().unwrap();
    let (keys, inputs) = given(&lab, &report);
    let keys: Vec<_> = keys
        .iter()
        .map(|k| provmark_evidence::KeyFile::load(Path::new(k)).unwrap())
        .collect();
    let mut r = report.clone();
    r.command.name = "sh -c".into();
    assert!(matches!(
        recompute(&r, &keys, &inputs),
        Err(Error::UnknownCommand { .. })
    ));
    let mut r = report.clone();
    r.parameters.insert("exec".into(), json!("rm -rf /"));
    assert!(matches!(
        recompute(&r, &keys, &inputs),
        Err(Error::Parameters { .. })
    ));
    let mut r = report.clone();
    r.inputs[0].role = "endpoint".into();
    let e = recompute(&r, &keys, &inputs).unwrap_err();
    assert!(e.to_string().contains("role \"endpoint\""), "{e}");
}

#[test]
fn relabelled_padded_or_oversized_reports_are_mismatches_not_crashes() {
    let lab = lab();
    // A corpus audit relabelled as an API audit (digest fixed): refused.
    let mut r = corpus(&lab).compute().unwrap();
    r.command.name = "audit api".into();
    r.digest = r.computed_digest();
    let out = verified(&lab, &r);
    assert!(!out.matched());
    assert!(out
        .differences
        .iter()
        .any(|d| matches!(d, provmark_evidence::Difference::NotRecomputable { .. })));
    // A detect report given a collection it never had: refused.
    let mut r = detect(&lab).compute().unwrap();
    r.collection = Some(json!({"endpoint": "https://rival.example/v1"}));
    r.digest = r.computed_digest();
    assert!(!verified(&lab, &r).matched());
    // A null-key count no audit takes: a mismatch, with no allocation of it.
    let mut r = corpus(&lab).compute().unwrap();
    r.parameters.insert("null_keys".into(), json!(u64::MAX));
    r.digest = r.computed_digest();
    let shown: Vec<String> = verified(&lab, &r)
        .differences
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(shown.iter().any(|d| d.contains("null-keys")), "{shown:?}");
}

#[test]
fn members_unknown_to_the_format_are_refused_at_any_depth() {
    let lab = lab();
    let report = detect(&lab).compute().unwrap();
    for pointer in ["/command", "/tool", "/profiles/0", "/inputs/0"] {
        let mut v = report.to_value();
        v.pointer_mut(pointer).unwrap()["note"] = json!("proves model X was distilled");
        let e = provmark_evidence::parse(&v.to_string(), "x.json").unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{pointer}: {e}");
    }
}
