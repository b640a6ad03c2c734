//! The serving policy for sampling settings (spec §6.2): what a server does
//! with a request whose temperature, top-p or top-k would leave the keyed
//! rule no choice, and so leave the answer unmarked.
//!
//! Gumbel and SynthID choose among the candidates that survive temperature,
//! top-k and top-p; at temperature 0 or a tiny top-p there is one candidate
//! and the key changes nothing. KGW biases the logits before the filters,
//! so it keeps marking at temperature 0, more weakly. The distiller writes
//! every request, so the operator's policy decides, fail-closed by default:
//! [`PolicyMode::Floor`] serves such a request at the [`SamplingFloor`],
//! [`PolicyMode::Refuse`] refuses it naming the parameter, and only an
//! explicit [`PolicyMode::AsRequested`] serves it as asked.

use std::fmt;

use crate::profile::Scheme;
use crate::sampling::SamplingConfig;

/// A sampling parameter a policy may raise or refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplingParam {
    /// `temperature`.
    Temperature,
    /// `top_p`.
    TopP,
    /// `top_k`.
    TopK,
}

impl SamplingParam {
    /// The OpenAI request field's name.
    pub fn name(self) -> &'static str {
        match self {
            SamplingParam::Temperature => "temperature",
            SamplingParam::TopP => "top_p",
            SamplingParam::TopK => "top_k",
        }
    }
}

impl fmt::Display for SamplingParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The least a served request gets: temperature ≥ `temperature`, top-p ≥
/// `top_p`, and top-k (when the request turns it on) ≥ `top_k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingFloor {
    temperature: f32,
    top_p: f32,
    top_k: usize,
}

impl SamplingFloor {
    /// A floor; `temperature` in [0, 2] (the range requests may ask for),
    /// `top_p` in [0, 1], `top_k` 0 (no floor) or ≥ 2 (a floor of 1 would
    /// force one candidate).
    pub fn new(temperature: f32, top_p: f32, top_k: usize) -> Result<SamplingFloor, crate::Error> {
        if !(temperature.is_finite() && (0.0..=2.0).contains(&temperature)) {
            return Err(crate::Error::Sampling(format!(
                "the temperature floor must lie between 0 and 2, got {temperature}"
            )));
        }
        if top_k == 1 {
            return Err(crate::Error::Sampling(
                "a top_k floor of 1 forces one candidate; give 0 (no floor) or at least 2".into(),
            ));
        }
        if !(0.0..=1.0).contains(&top_p) {
            return Err(crate::Error::Sampling(format!(
                "the top_p floor must lie in [0, 1], got {top_p}"
            )));
        }
        Ok(SamplingFloor {
            temperature,
            top_p,
            top_k,
        })
    }

    /// The floor chosen for `scheme` from the measurements of
    /// `bench/RESULTS.md` ("Detection power against sampling settings", 16
    /// prompts × 160 tokens per cell on the default model). gumbel and
    /// synthid answers carry no mark at temperature 0 or top-p 0.1 (median
    /// log10 p −0.3 to −0.8 per answer) and almost none at temperature 0.2;
    /// at temperature 0.8 every answer is detected at 3.0–3.5× the tokens
    /// of T = 1, at top-p 0.9 at 2.1–2.2× (within 2× needs T ≥ 0.9, top-p ≥
    /// 0.95, a larger change to what was asked); so temperature ≥ 0.8,
    /// top-p ≥ 0.9, and top-k ≥ 20 (not measured: it keeps at least the
    /// candidates top-p 0.9 keeps at these temperatures on this model's
    /// typical steps). kgw biases the logits before the filters and stays
    /// detected even greedy (median −9.9 against −13.2 at T = 1, 1.7× the
    /// tokens; top-p 0.1: 1.8×), so it needs no floor.
    pub fn for_scheme(scheme: &Scheme) -> SamplingFloor {
        match scheme {
            Scheme::Kgw(_) => SamplingFloor {
                temperature: 0.0,
                top_p: 0.0,
                top_k: 0,
            },
            Scheme::Gumbel | Scheme::SynthId(_) => SamplingFloor {
                temperature: 0.8,
                top_p: 0.9,
                top_k: 20,
            },
        }
    }

    /// Whether this floor keeps `scheme` marked: gumbel and synthid need
    /// a temperature and a top-p floor above 0 (else a greedy request is
    /// served greedy, unmarked: that is [`PolicyMode::AsRequested`], which
    /// an operator should choose by name). kgw accepts any floor.
    pub fn check_for(&self, scheme: &Scheme) -> Result<(), crate::Error> {
        if !matches!(scheme, Scheme::Kgw(_)) && (self.temperature == 0.0 || self.top_p == 0.0) {
            return Err(crate::Error::Sampling(format!(
                "a {} floor needs a temperature and a top_p above 0, or greedy requests are served \
                 unmarked (choose --sampling-policy as-requested for that)",
                scheme.name()
            )));
        }
        Ok(())
    }

    /// Least temperature.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }
    /// Least top-p.
    pub fn top_p(&self) -> f32 {
        self.top_p
    }
    /// Least top-k, when top-k is on.
    pub fn top_k(&self) -> usize {
        self.top_k
    }
}

/// What a policy does with settings below its floor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicyMode {
    /// Serve at the floor (the default): each setting below it is raised to
    /// it, and the answer says which.
    #[default]
    Floor,
    /// Refuse the request, naming the first parameter below the floor.
    Refuse,
    /// Serve as asked, even unmarked (the operator's explicit choice;
    /// answers still report how many tokens were marked).
    AsRequested,
}

impl PolicyMode {
    /// `floor`, `refuse` or `as-requested`.
    pub fn name(self) -> &'static str {
        match self {
            PolicyMode::Floor => "floor",
            PolicyMode::Refuse => "refuse",
            PolicyMode::AsRequested => "as-requested",
        }
    }
}

impl std::str::FromStr for PolicyMode {
    type Err = String;

    /// `floor`, `refuse` or `as-requested`.
    fn from_str(s: &str) -> Result<PolicyMode, String> {
        [
            PolicyMode::Floor,
            PolicyMode::Refuse,
            PolicyMode::AsRequested,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| format!("{s:?} is not a policy: give floor, refuse or as-requested"))
    }
}

impl std::str::FromStr for SamplingFloor {
    type Err = String;

    /// `TEMPERATURE,TOP_P,TOP_K`, e.g. `0.7,0.9,20`.
    fn from_str(s: &str) -> Result<SamplingFloor, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [t, p, k] = parts[..] else {
            return Err("give TEMPERATURE,TOP_P,TOP_K, e.g. 0.7,0.9,20".into());
        };
        let num = |v: &str| v.parse::<f32>().map_err(|e| format!("{v:?}: {e}"));
        let k = k.parse::<usize>().map_err(|e| format!("{k:?}: {e}"))?;
        SamplingFloor::new(num(t)?, num(p)?, k).map_err(|e| e.to_string())
    }
}

/// Settings below a [`PolicyMode::Refuse`] policy's floor.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error(
    "{param} {} would leave this server's watermark no choice at most positions; \
     it serves {param} ≥ {}",
    *requested as f32,
    *floor as f32
)]
pub struct BelowFloor {
    /// The first parameter below the floor (temperature, then top_p, then
    /// top_k).
    pub param: SamplingParam,
    /// Its requested value.
    pub requested: f64,
    /// The floor.
    pub floor: f64,
}

/// The settings a request is served with.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// What is used to sample.
    pub sampling: SamplingConfig,
    /// The parameters the floor raised, in the order temperature, top_p,
    /// top_k (empty when served as asked).
    pub raised: Vec<SamplingParam>,
}

/// A mode and a floor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingPolicy {
    mode: PolicyMode,
    floor: SamplingFloor,
}

impl SamplingPolicy {
    /// `mode` with `floor`.
    pub fn new(mode: PolicyMode, floor: SamplingFloor) -> SamplingPolicy {
        SamplingPolicy { mode, floor }
    }

    /// `mode` with the floor of `scheme` ([`SamplingFloor::for_scheme`]).
    pub fn for_scheme(mode: PolicyMode, scheme: &Scheme) -> SamplingPolicy {
        SamplingPolicy::new(mode, SamplingFloor::for_scheme(scheme))
    }

    /// Serves everything as asked: for an engine without a watermark.
    pub fn unwatermarked() -> SamplingPolicy {
        SamplingPolicy::new(
            PolicyMode::AsRequested,
            SamplingFloor {
                temperature: 0.0,
                top_p: 0.0,
                top_k: 0,
            },
        )
    }

    /// The mode.
    pub fn mode(&self) -> PolicyMode {
        self.mode
    }

    /// The floor.
    pub fn floor(&self) -> &SamplingFloor {
        &self.floor
    }

    /// The settings to serve `requested` with, or why it is refused
    /// ([`PolicyMode::Refuse`] only). Top-k 0 (off) is never below a floor.
    pub fn apply(&self, requested: SamplingConfig) -> Result<Applied, BelowFloor> {
        let f = &self.floor;
        let below = [
            (
                SamplingParam::Temperature,
                requested.temperature() < f.temperature,
                requested.temperature() as f64,
                f.temperature as f64,
            ),
            (
                SamplingParam::TopP,
                requested.top_p() < f.top_p,
                requested.top_p() as f64,
                f.top_p as f64,
            ),
            (
                SamplingParam::TopK,
                requested.top_k() > 0 && requested.top_k() < f.top_k,
                requested.top_k() as f64,
                f.top_k as f64,
            ),
        ];
        match self.mode {
            PolicyMode::AsRequested => Ok(Applied {
                sampling: requested,
                raised: Vec::new(),
            }),
            PolicyMode::Refuse => match below.iter().find(|b| b.1) {
                Some(&(param, _, requested, floor)) => Err(BelowFloor {
                    param,
                    requested,
                    floor,
                }),
                None => Ok(Applied {
                    sampling: requested,
                    raised: Vec::new(),
                }),
            },
            PolicyMode::Floor => {
                let raised: Vec<SamplingParam> =
                    below.iter().filter(|b| b.1).map(|b| b.0).collect();
                let top_k = if requested.top_k() > 0 {
                    requested.top_k().max(f.top_k)
                } else {
                    0
                };
                let sampling = SamplingConfig::new(
                    requested.temperature().max(f.temperature),
                    top_k,
                    requested.top_p().max(f.top_p),
                )
                .expect("raising valid settings keeps them valid");
                Ok(Applied { sampling, raised })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SynthIdParams;

    fn cfg(t: f32, k: usize, p: f32) -> SamplingConfig {
        SamplingConfig::new(t, k, p).unwrap()
    }

    #[test]
    fn floor_raises_refuse_names_as_requested_keeps() {
        let floor = SamplingFloor::new(0.7, 0.9, 20).unwrap();
        let p = SamplingPolicy::new(PolicyMode::Floor, floor);
        let a = p.apply(cfg(0.0, 5, 0.05)).unwrap();
        assert_eq!(a.sampling, cfg(0.7, 20, 0.9));
        assert_eq!(
            a.raised,
            vec![
                SamplingParam::Temperature,
                SamplingParam::TopP,
                SamplingParam::TopK
            ]
        );
        // At or above the floor, and top-k off: unchanged.
        let a = p.apply(cfg(1.0, 0, 0.95)).unwrap();
        assert_eq!(a.sampling, cfg(1.0, 0, 0.95));
        assert!(a.raised.is_empty());

        let r = SamplingPolicy::new(PolicyMode::Refuse, floor);
        let e = r.apply(cfg(1.0, 0, 0.05)).unwrap_err();
        assert_eq!(e.param, SamplingParam::TopP);
        assert!((e.requested - 0.05).abs() < 1e-6 && (e.floor - 0.9).abs() < 1e-6);
        assert!(e.to_string().starts_with("top_p 0.05 would"), "{e}");
        assert!(e.to_string().ends_with("top_p ≥ 0.9"), "{e}");
        assert_eq!(
            r.apply(cfg(0.0, 0, 1.0)).unwrap_err().param,
            SamplingParam::Temperature
        );
        assert_eq!(
            r.apply(cfg(0.8, 3, 1.0)).unwrap_err().param,
            SamplingParam::TopK
        );
        assert!(r.apply(cfg(0.8, 40, 0.95)).is_ok());

        let asked = SamplingPolicy::new(PolicyMode::AsRequested, floor);
        assert_eq!(
            asked.apply(cfg(0.0, 1, 0.1)).unwrap().sampling,
            cfg(0.0, 1, 0.1)
        );
    }

    #[test]
    fn schemes_get_their_floors() {
        let s = SamplingFloor::for_scheme(&Scheme::SynthId(SynthIdParams::new(30).unwrap()));
        assert!(s.temperature() > 0.0 && s.top_p() > 0.0);
        assert_eq!(s, SamplingFloor::for_scheme(&Scheme::Gumbel));
        let kgw =
            SamplingFloor::for_scheme(&Scheme::Kgw(crate::KgwParams::new(0.25, 2.0).unwrap()));
        let greedy = SamplingPolicy::new(PolicyMode::Refuse, kgw).apply(SamplingConfig::greedy());
        assert!(greedy.is_ok(), "kgw marks greedy answers: no floor");
        assert!(SamplingFloor::new(-1.0, 0.5, 0).is_err());
        assert_eq!(
            "0.5, 0.8,5".parse().ok(),
            SamplingFloor::new(0.5, 0.8, 5).ok()
        );
        assert!("0.5,0.8".parse::<SamplingFloor>().is_err());
        assert!("0.5,2,1".parse::<SamplingFloor>().is_err());
        assert_eq!("as-requested".parse(), Ok(PolicyMode::AsRequested));
        assert!("off".parse::<PolicyMode>().is_err());
        assert!(SamplingFloor::new(0.5, 1.5, 0).is_err());
        assert!(SamplingFloor::new(3.0, 0.5, 0).is_err());
        assert!(SamplingFloor::new(0.5, 0.5, 1).is_err());
        let synthid = Scheme::SynthId(SynthIdParams::new(30).unwrap());
        assert!(SamplingFloor::new(0.0, 0.9, 20)
            .unwrap()
            .check_for(&synthid)
            .is_err());
        assert!(SamplingFloor::new(0.8, 0.9, 20)
            .unwrap()
            .check_for(&synthid)
            .is_ok());
        let kgw = Scheme::Kgw(crate::KgwParams::new(0.25, 2.0).unwrap());
        assert!(SamplingFloor::new(0.0, 0.0, 0)
            .unwrap()
            .check_for(&kgw)
            .is_ok());
        let u = SamplingPolicy::unwatermarked();
        assert_eq!(
            u.apply(SamplingConfig::greedy()).unwrap().sampling,
            SamplingConfig::greedy()
        );
    }
}
