//! Watermark profiles: the one validated description of a watermark that
//! generation, serving and detection all share, so parameters cannot drift
//! apart between them.

use std::fmt;
use std::path::Path;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::key::{hex, Key};
use crate::{Error, SPEC_VERSION};

/// Largest context width a profile may use.
pub const MAX_CONTEXT: u32 = 16;
/// Largest number of SynthID tournament layers (one 32-bit word per token).
pub const MAX_LAYERS: u32 = 32;
/// Largest KGW bias; larger values are indistinguishable from hard lists.
pub const MAX_DELTA: f64 = 100.0;

/// KGW values are 16-bit: 2^16.
const KGW_SCALE: f64 = 65536.0;

/// Red/green list parameters (Kirchenbauer et al. 2023).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KgwParams {
    gamma: f64,
    delta: f64,
}

impl KgwParams {
    /// `gamma` is the green fraction in (0, 1); `delta` the logit bias in (0, 100].
    pub fn new(gamma: f64, delta: f64) -> Result<KgwParams, Error> {
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err(Error::Profile(format!(
                "params.gamma must lie strictly between 0 and 1, got {gamma}"
            )));
        }
        let threshold = (gamma * KGW_SCALE).ceil();
        if threshold >= KGW_SCALE {
            return Err(Error::Profile(format!(
                "params.gamma {gamma} is too close to 1 for a 16-bit threshold"
            )));
        }
        if !(delta > 0.0 && delta <= MAX_DELTA) {
            return Err(Error::Profile(format!(
                "params.delta must lie in (0, {MAX_DELTA}], got {delta}"
            )));
        }
        Ok(KgwParams { gamma, delta })
    }
    /// Nominal green fraction.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
    /// Logit bias added to green tokens.
    pub fn delta(&self) -> f64 {
        self.delta
    }
    /// T = ceil(γ·2^16): a token is green iff its 16-bit value is below T.
    pub fn threshold(&self) -> u32 {
        (self.gamma * KGW_SCALE).ceil() as u32
    }
    /// The exact green probability under the null, T / 2^16.
    pub fn effective_gamma(&self) -> f64 {
        self.threshold() as f64 / KGW_SCALE
    }
    /// The exact red probability under the null, 1 − T / 2^16.
    pub fn effective_red(&self) -> f64 {
        (KGW_SCALE - self.threshold() as f64) / KGW_SCALE
    }
}

/// SynthID-Text tournament parameters (Dathathri et al. 2024).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthIdParams {
    layers: u32,
}

impl SynthIdParams {
    /// `layers` is the number of tournament layers m, 1 ≤ m ≤ 32.
    pub fn new(layers: u32) -> Result<SynthIdParams, Error> {
        if layers == 0 || layers > MAX_LAYERS {
            return Err(Error::Profile(format!(
                "params.layers must be between 1 and {MAX_LAYERS}, got {layers}"
            )));
        }
        Ok(SynthIdParams { layers })
    }
    /// Number of tournament layers m.
    pub fn layers(&self) -> u32 {
        self.layers
    }
}

/// A watermarking scheme with its validated parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
    /// Red/green soft watermark: bias green logits.
    Kgw(KgwParams),
    /// Aaronson's exponential-minimum (Gumbel) sampling; distortion-free.
    Gumbel,
    /// SynthID-Text tournament sampling.
    SynthId(SynthIdParams),
}

impl Scheme {
    /// The scheme's name in profiles and in the keyed PRF.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Kgw(_) => "kgw",
            Scheme::Gumbel => "gumbel",
            Scheme::SynthId(_) => "synthid",
        }
    }

    /// Scheme parameters that shape the schedule, encoded for the keyed PRF.
    pub(crate) fn prf_params(&self) -> Vec<u8> {
        match self {
            Scheme::Kgw(p) => p.gamma.to_le_bytes().to_vec(),
            Scheme::Gumbel => Vec::new(),
            Scheme::SynthId(p) => p.layers.to_le_bytes().to_vec(),
        }
    }

    fn params_json(&self) -> Value {
        match self {
            Scheme::Kgw(p) => json!({"gamma": p.gamma, "delta": p.delta}),
            Scheme::Gumbel => json!({}),
            Scheme::SynthId(p) => json!({"layers": p.layers}),
        }
    }

    fn from_json(name: &str, params: &Map<String, Value>) -> Result<Scheme, Error> {
        let allowed: &[&str] = match name {
            "kgw" => &["gamma", "delta"],
            "gumbel" => &[],
            "synthid" => &["layers"],
            other => {
                return Err(Error::Profile(format!(
                    "unknown scheme {other:?} (known: kgw, gumbel, synthid)"
                )))
            }
        };
        if let Some(extra) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Error::Profile(format!(
                "params.{extra} is not a parameter of scheme {name}"
            )));
        }
        let number = |field: &str| -> Result<f64, Error> {
            params
                .get(field)
                .ok_or_else(|| Error::Profile(format!("params.{field} is missing")))?
                .as_f64()
                .ok_or_else(|| Error::Profile(format!("params.{field} must be a number")))
        };
        Ok(match name {
            "kgw" => Scheme::Kgw(KgwParams::new(number("gamma")?, number("delta")?)?),
            "gumbel" => Scheme::Gumbel,
            _ => {
                let layers = params
                    .get("layers")
                    .ok_or_else(|| Error::Profile("params.layers is missing".into()))
                    .and_then(|v| {
                        integer(v).ok_or_else(|| {
                            Error::Profile("params.layers must be a positive integer".into())
                        })
                    })?;
                Scheme::SynthId(SynthIdParams::new(layers.min(u32::MAX as u64) as u32)?)
            }
        })
    }
}

/// The value of an integer member (spec §3): any JSON number whose
/// binary64 value is a non-negative integer up to 2^53, so `2`, `2.0`,
/// `2e0` and `-0` are the integers 2, 2, 2 and 0 (the canonical form and
/// the profile digest see them as the same number); `2.5`, `-1` and
/// non-numbers are not integers.
fn integer(value: &Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let x = value.as_f64()?;
    (x >= 0.0 && x.fract() == 0.0 && x <= 9_007_199_254_740_992.0).then_some(x as u64)
}

/// SHA-256 of a tokenizer file's bytes, written `sha256:<64 hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenizerDigest(String);

impl TokenizerDigest {
    /// Digest of the exact bytes of a tokenizer file.
    pub fn of_bytes(bytes: &[u8]) -> TokenizerDigest {
        TokenizerDigest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<TokenizerDigest, Error> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(TokenizerDigest(s.to_string()))
        } else {
            Err(Error::Profile(format!(
                "tokenizer must be \"sha256:\" followed by 64 lowercase hex digits, got {s:?}"
            )))
        }
    }
    /// The `sha256:…` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenizerDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The largest profile file read (a profile is a few hundred bytes).
pub const MAX_PROFILE_FILE_BYTES: u64 = 1 << 20;

/// A validated watermark profile (spec §3).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    scheme: Scheme,
    context: u32,
    tokenizer: TokenizerDigest,
    key_id: String,
}

impl Profile {
    /// A profile for `key`, with context width `context` (0 ≤ h ≤ 16).
    pub fn new(
        scheme: Scheme,
        context: u32,
        tokenizer: TokenizerDigest,
        key: &Key,
    ) -> Result<Profile, Error> {
        Profile::from_parts(scheme, context, tokenizer, key.id())
    }

    /// This profile under another key: the same scheme, parameters, context
    /// width and tokenizer, made for `key` (e.g. the random keys of the
    /// key-swap null).
    pub fn with_key(&self, key: &Key) -> Profile {
        Profile {
            scheme: self.scheme,
            context: self.context,
            tokenizer: self.tokenizer.clone(),
            key_id: key.id(),
        }
    }

    fn from_parts(
        scheme: Scheme,
        context: u32,
        tokenizer: TokenizerDigest,
        key_id: String,
    ) -> Result<Profile, Error> {
        if context > MAX_CONTEXT {
            return Err(Error::Profile(format!(
                "context must be between 0 and {MAX_CONTEXT}, got {context}"
            )));
        }
        if key_id.len() != 16
            || !key_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Error::Profile(format!(
                "key_id must be 16 lowercase hex digits, got {key_id:?}"
            )));
        }
        Ok(Profile {
            scheme,
            context,
            tokenizer,
            key_id,
        })
    }

    /// Whether answers may be embedded with this profile (spec §3.1):
    /// [`Error::Profile`] for gumbel or synthid with context width 0, whose
    /// single keyed window makes every position's choice a function of the
    /// candidates alone, so answers loop verbatim ("the season's season's
    /// …"). kgw with h = 0 (a fixed green list, Zhao et al. 2023) still
    /// samples at random and is allowed. Detection accepts every profile.
    pub fn check_embeddable(&self) -> Result<(), Error> {
        if self.context == 0 && !matches!(self.scheme, Scheme::Kgw(_)) {
            return Err(Error::Profile(format!(
                "a {} profile with context 0 cannot be embedded: every position would share one \
                 keyed choice and answers would repeat themselves verbatim (use context ≥ 1; \
                 only kgw may use 0)",
                self.scheme.name()
            )));
        }
        Ok(())
    }

    /// The scheme and its parameters.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }
    /// Context width h: how many preceding tokens seed each position.
    pub fn context(&self) -> usize {
        self.context as usize
    }
    /// Digest of the tokenizer the profile was made for.
    pub fn tokenizer(&self) -> &TokenizerDigest {
        &self.tokenizer
    }
    /// Id of the key the profile was made for.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The profile as a JSON value.
    pub fn to_json(&self) -> Value {
        json!({
            "spec": SPEC_VERSION,
            "scheme": self.scheme.name(),
            "params": self.scheme.params_json(),
            "context": self.context,
            "tokenizer": self.tokenizer.as_str(),
            "key_id": self.key_id,
        })
    }

    /// Canonical form (RFC 8785 JSON Canonicalization Scheme).
    pub fn canonical_json(&self) -> String {
        serde_jcs::to_string(&self.to_json()).expect("profile JSON is always serialisable")
    }

    /// `sha256:` digest of the canonical form.
    pub fn digest(&self) -> String {
        format!(
            "sha256:{}",
            hex(&Sha256::digest(self.canonical_json().as_bytes()))
        )
    }

    /// Parses and validates a profile document. `origin` names it in errors.
    ///
    /// Errors ([`Error::Profile`], prefixed with `origin`): not JSON; a
    /// member that appears twice in one object, named by its path
    /// (`params.gamma`), because parsers disagree on which of the two they
    /// keep (spec §3); and every error of [`Profile::from_json`].
    pub fn from_json_str(text: &str, origin: &str) -> Result<Profile, Error> {
        let wrap = |e: Error| match e {
            Error::Profile(m) => Error::Profile(format!("{origin}: {m}")),
            other => other,
        };
        let not_json = |e: serde_json::Error| {
            Error::Profile(format!(
                "{origin}: not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        };
        if let Some(path) = crate::json_members::first_duplicate(text).map_err(not_json)? {
            return Err(Error::Profile(format!(
                "{origin}: member {path:?} appears twice; a profile names each member once"
            )));
        }
        let value: Value = serde_json::from_str(text).map_err(not_json)?;
        Profile::from_json(&value).map_err(wrap)
    }

    /// Validates a profile given as a JSON value.
    pub fn from_json(value: &Value) -> Result<Profile, Error> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::Profile("a profile must be a JSON object".into()))?;
        const FIELDS: [&str; 6] = ["spec", "scheme", "params", "context", "tokenizer", "key_id"];
        if let Some(extra) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Error::Profile(format!("unknown field {extra:?}")));
        }
        let string = |field: &str| -> Result<&str, Error> {
            obj.get(field)
                .ok_or_else(|| Error::Profile(format!("field {field:?} is missing")))?
                .as_str()
                .ok_or_else(|| Error::Profile(format!("field {field:?} must be a string")))
        };
        let spec = string("spec")?;
        if spec != SPEC_VERSION {
            return Err(Error::Profile(format!(
                "spec version {spec:?} is not supported (this build implements {SPEC_VERSION:?})"
            )));
        }
        let params = obj
            .get("params")
            .ok_or_else(|| Error::Profile("field \"params\" is missing".into()))?
            .as_object()
            .ok_or_else(|| Error::Profile("field \"params\" must be an object".into()))?;
        let scheme = Scheme::from_json(string("scheme")?, params)?;
        let context = obj
            .get("context")
            .ok_or_else(|| Error::Profile("field \"context\" is missing".into()))
            .map(integer)?
            .ok_or_else(|| {
                Error::Profile("field \"context\" must be a non-negative integer".into())
            })?;
        let context = u32::try_from(context)
            .map_err(|_| Error::Profile(format!("context {context} is out of range")))?;
        let tokenizer = TokenizerDigest::parse(string("tokenizer")?)?;
        Profile::from_parts(scheme, context, tokenizer, string("key_id")?.to_string())
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<Profile, Error> {
        use std::io::Read as _;
        let origin = path.display().to_string();
        let fail = |e: std::io::Error| Error::Profile(format!("{origin}: {e}"));
        let mut raw = Vec::new();
        crate::open_regular(path)
            .map_err(fail)?
            .take(MAX_PROFILE_FILE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(fail)?;
        if raw.len() as u64 > MAX_PROFILE_FILE_BYTES {
            return Err(Error::Profile(format!(
                "{origin}: larger than the {MAX_PROFILE_FILE_BYTES}-byte limit of a profile file"
            )));
        }
        let text = String::from_utf8(raw)
            .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        Profile::from_json_str(&text, &origin)
    }

    /// Checks that `key` is the key this profile was made for.
    pub fn check_key(&self, key: &Key) -> Result<(), Error> {
        let id = key.id();
        if id == self.key_id {
            Ok(())
        } else {
            Err(Error::KeyMismatch {
                key_id: id,
                profile_key_id: self.key_id.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes([1u8; 32])
    }

    fn tok() -> TokenizerDigest {
        TokenizerDigest::of_bytes(b"{}")
    }

    #[test]
    fn canonical_form_is_sorted_and_round_trips() {
        let p = Profile::new(
            Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
            2,
            tok(),
            &key(),
        )
        .unwrap();
        let c = p.canonical_json();
        assert!(c.starts_with("{\"context\":2,\"key_id\":"), "{c}");
        assert!(c.contains("\"params\":{\"delta\":2,\"gamma\":0.25}"), "{c}");
        let back = Profile::from_json_str(&c, "p").unwrap();
        assert_eq!(back, p);
        assert_eq!(back.digest(), p.digest());
        let pretty = serde_json::to_string_pretty(&p.to_json()).unwrap();
        assert_eq!(
            Profile::from_json_str(&pretty, "p").unwrap().digest(),
            p.digest()
        );
    }

    #[test]
    fn rejects_bad_profiles() {
        let good = Profile::new(Scheme::Gumbel, 2, tok(), &key())
            .unwrap()
            .to_json();
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|v| v["spec"] = json!("provmark-wm/9")),
                "not supported",
            ),
            (Box::new(|v| v["scheme"] = json!("rot13")), "unknown scheme"),
            (Box::new(|v| v["context"] = json!(99)), "context must be"),
            (
                Box::new(|v| v["context"] = json!(-1)),
                "non-negative integer",
            ),
            (
                Box::new(|v| v["tokenizer"] = json!("md5:00")),
                "tokenizer must be",
            ),
            (Box::new(|v| v["extra"] = json!(1)), "unknown field"),
            (
                Box::new(|v| v["params"] = json!({"gamma": 0.5})),
                "not a parameter",
            ),
            (
                Box::new(|v| {
                    v["scheme"] = json!("kgw");
                    v["params"] = json!({"gamma": 1.5, "delta": 2})
                }),
                "strictly between 0 and 1",
            ),
            (
                Box::new(|v| {
                    v["scheme"] = json!("kgw");
                    v["params"] = json!({"gamma": 0.5})
                }),
                "params.delta is missing",
            ),
            (
                Box::new(|v| {
                    v["scheme"] = json!("synthid");
                    v["params"] = json!({"layers": 0})
                }),
                "between 1 and 32",
            ),
        ];
        for (mutate, expected) in cases {
            let mut v = good.clone();
            mutate(&mut v);
            let err = Profile::from_json(&v).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
        let err = Profile::from_json_str("{\"spec\": ", "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.json") && err.contains("line 1"), "{err}");
    }

    /// Spec §3: an integer member is any number whose value is an
    /// integer, so `2.0` is the integer 2 (the canonical form writes `2`
    /// and the digest is the same); a non-integer is refused.
    #[test]
    fn integer_members_accept_integral_numbers_only() {
        let p = Profile::new(
            Scheme::SynthId(SynthIdParams::new(30).unwrap()),
            2,
            tok(),
            &key(),
        )
        .unwrap();
        let c = p.canonical_json();
        for (from, to) in [
            ("\"context\":2", "\"context\":2.0"),
            ("\"context\":2", "\"context\":2e0"),
            ("\"context\":2", "\"context\":0.2e1"),
            ("\"layers\":30", "\"layers\":30.000"),
        ] {
            let text = c.replace(from, to);
            assert_ne!(text, c);
            let q = Profile::from_json_str(&text, "p").unwrap();
            assert_eq!(q, p, "{to}");
            assert_eq!(q.digest(), p.digest());
            assert_eq!(q.canonical_json(), c, "written back as an integer");
        }
        let zero = c.replace("\"context\":2", "\"context\":-0.0");
        assert_eq!(Profile::from_json_str(&zero, "p").unwrap().context(), 0);
        for (from, to, message) in [
            (
                "\"context\":2",
                "\"context\":2.5",
                "\"context\" must be a non-negative integer",
            ),
            (
                "\"context\":2",
                "\"context\":-2",
                "\"context\" must be a non-negative integer",
            ),
            (
                "\"context\":2",
                "\"context\":\"2\"",
                "\"context\" must be a non-negative integer",
            ),
            (
                "\"context\":2",
                "\"context\":1e300",
                "\"context\" must be a non-negative integer",
            ),
            (
                "\"context\":2",
                "\"context\":17.0",
                "context must be between",
            ),
            (
                "\"layers\":30",
                "\"layers\":29.5",
                "params.layers must be a positive integer",
            ),
        ] {
            let err = Profile::from_json_str(&c.replace(from, to), "p")
                .unwrap_err()
                .to_string();
            assert!(err.contains(message), "{to}: {err}");
        }
    }

    /// Spec §3: a member given twice is refused, naming it, whichever
    /// object it is in (serde_json alone would keep the last).
    #[test]
    fn duplicate_members_are_refused_by_name() {
        let p = Profile::new(
            Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
            2,
            tok(),
            &key(),
        )
        .unwrap();
        let c = p.canonical_json();
        let twice = c.replace("\"context\":2", "\"context\":2,\"context\":3");
        let err = Profile::from_json_str(&twice, "p.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p.json") && err.contains("\"context\" appears twice"),
            "{err}"
        );
        let inner = c.replace("\"gamma\":0.25", "\"gamma\":0.25,\"gamma\":0.5");
        let err = Profile::from_json_str(&inner, "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"params.gamma\" appears twice"), "{err}");
        // Equal values are refused too: the rule is about the document.
        let same = c.replace("\"context\":2", "\"context\":2,\"context\":2");
        assert!(Profile::from_json_str(&same, "p").is_err());
    }

    /// Spec §3: `key_id` is exactly 16 lowercase hexadecimal digits.
    #[test]
    fn key_id_must_be_16_lowercase_hex_digits() {
        let good = Profile::new(Scheme::Gumbel, 2, tok(), &key())
            .unwrap()
            .to_json();
        let id = good["key_id"].as_str().unwrap().to_string();
        assert!(Profile::from_json(&good).is_ok());
        for bad in [
            id.to_uppercase(),
            id[..15].to_string(),
            format!("{id}0"),
            format!("0x{}", &id[2..]),
            format!(" {}", &id[1..]),
            "g".repeat(16),
        ] {
            let mut v = good.clone();
            v["key_id"] = json!(bad);
            let err = Profile::from_json(&v).unwrap_err().to_string();
            assert!(
                err.contains("key_id must be 16 lowercase hex digits"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn key_mismatch_is_detected() {
        let p = Profile::new(Scheme::Gumbel, 1, tok(), &key()).unwrap();
        assert!(p.check_key(&key()).is_ok());
        let err = p
            .check_key(&Key::from_bytes([2u8; 32]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the key"), "{err}");
    }

    #[test]
    fn with_key_keeps_everything_but_the_key() {
        let p = Profile::new(Scheme::Gumbel, 3, tok(), &key()).unwrap();
        let other = Key::from_bytes([2u8; 32]);
        let q = p.with_key(&other);
        assert_eq!(
            q,
            Profile::new(Scheme::Gumbel, 3, tok(), &other).unwrap(),
            "the same as building it anew"
        );
        assert!(q.check_key(&other).is_ok());
        assert!(q.check_key(&key()).is_err());
    }
}
