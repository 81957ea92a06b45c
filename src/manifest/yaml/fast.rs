//! The fast path: one document read with serde_yaml_ng (libyaml) into a plain value,
//! or `None` whenever its reading might differ from the spanned serde-saphyr parse.
//!
//! serde_yaml_ng reads the manifests' documents 2.4–2.7× faster than serde-saphyr
//! (BENCHMARKS.md), but the two read some input differently: YAML 1.1 scalars
//! (`yes`, `017`, `1_000`), merge keys, unknown tags, duplicate keys, empty documents.
//! The spanned parse is the reference; [`super::scan`] keeps those constructs away from
//! this path, and anything this path cannot read exactly as the reference does (an
//! error, a duplicate or non-string key, a non-finite or too large number) is `None`, so
//! the caller parses the document with spans instead. This path never reports an error
//! of its own: every message comes from the spanned parse, with its line.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The one document of `text`, or `None` to have it parsed with spans: `text` holds no
/// document or several, or anything this path does not read as the spanned parse does.
pub(super) fn parse(text: &str) -> Option<Value> {
    let mut documents = serde_yaml_ng::Deserializer::from_str(text);
    let document = documents.next()?;
    let value = Exact { depth: 0 }.deserialize(document).ok()?;
    // Manifests are mappings. serde-saphyr skips an empty (or explicitly null)
    // document, libyaml reads it as null; a document that is a scalar (`--- >`) starts
    // on a line the two tell apart. A second document means the cut into slices did
    // not see its marker.
    if !value.is_object() || documents.next().is_some() {
        return None;
    }
    Some(value)
}

/// Nesting past this goes the spanned way: serde-saphyr refuses more than 64 levels
/// (its budget's `max_depth`), serde_yaml_ng more than 128, and each level is a few
/// stack frames here.
const MAX_DEPTH: usize = 48;

/// A value, `depth` collections deep, read only where serde_yaml_ng and serde-saphyr
/// agree; any other input is an error, which the caller turns into a spanned parse.
#[derive(Clone, Copy)]
struct Exact {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Exact {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Exact {
    /// The seed for the items of a collection at this depth.
    fn nested<E: de::Error>(self) -> Result<Exact, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom("nested too deep"));
        }
        Ok(Exact {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Exact {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a YAML value both parsers read alike")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    // No visit_i128/u128: serde_yaml_ng reads integers past 64 bits exactly, the
    // spanned parse as floats; the default refuses them, so they go the spanned way.

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        // `.inf`, `.nan`: serde-saphyr refuses them.
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a non-finite float"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let seed = self.nested()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(seed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let seed = self.nested()?;
        let mut object = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            let value = map.next_value_seed(seed)?;
            // serde-saphyr refuses a duplicate key (with its line); into a plain map it
            // would silently keep the last.
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom("a duplicate key"));
            }
        }
        Ok(Value::Object(object))
    }
}

/// A mapping key that serde_yaml_ng reads as a string. The spanned parse reads every
/// scalar key as its text (`1`, `true`) and refuses `~` and collections; the fast path
/// leaves every key that is not a string to it.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor).map(Key)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = String;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<String, E> {
        Ok(value)
    }
}
