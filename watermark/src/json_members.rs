//! Duplicate member detection for JSON documents (spec §3): a JSON parser
//! keeps one of two equal members silently (serde_json the last, others the
//! first), so two readers of one profile file could see different
//! profiles. A profile with a repeated member is therefore invalid, and
//! this walks the document once to find the first repeat.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The dotted path (`params.gamma`; array elements as `[i]`) of the first
/// member that appears twice in its object, in document order, or `None`.
///
/// Errors: the text is not JSON (serde_json's own error, with line and
/// column).
pub fn first_duplicate(text: &str) -> Result<Option<String>, serde_json::Error> {
    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let walked = Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    match walked {
        Ok(()) => {
            de.end()?;
            Ok(None)
        }
        // The walk stops at the first repeat by failing; report the repeat.
        Err(e) => match found {
            Some(path) => Ok(Some(path)),
            None => Err(e),
        },
    }
}

/// Walks one JSON value at `path`, recording the first repeated member.
struct Walk<'a> {
    path: String,
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            let seed = Walk {
                path,
                found: &mut *self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                *self.found = Some(path);
                return Err(de::Error::custom("duplicate member"));
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_repeat_with_its_path() {
        assert_eq!(first_duplicate(r#"{"a":1,"b":[1,{"c":2}]}"#).unwrap(), None);
        assert_eq!(
            first_duplicate(r#"{"a":1,"a":2}"#).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(
            first_duplicate(r#"{"p":{"g":1,"d":2,"g":3},"p":0}"#)
                .unwrap()
                .as_deref(),
            Some("p.g"),
            "the first in document order"
        );
        assert_eq!(
            first_duplicate(r#"[{"x":1},{"x":1,"x":1}]"#)
                .unwrap()
                .as_deref(),
            Some("[1].x")
        );
        // Equal after JSON unescaping is the same member.
        assert_eq!(
            first_duplicate(r#"{"a":1,"\u0061":2}"#).unwrap().as_deref(),
            Some("a")
        );
        assert!(first_duplicate(r#"{"a":1,"#).is_err());
        assert!(first_duplicate(r#"{"a":1} x"#).is_err());
    }
}
