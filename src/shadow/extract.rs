//! Reading the ranked ids out of a model's answer in one streaming pass: the JSON is validated
//! whole, but only the path to the list is descended into, everything else is skipped
//! (`IgnoredAny`), and ids without escapes are borrowed from the body. This replaced building a
//! `serde_json::Value` of both answers for every compared shadow copy. The same descent also
//! hands the list's raw text and its items' to interleaving, which rewrites the list in place
//! (`interleave::answer`). Pure, no I/O.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::compare::ExtractError;

/// The ids of the first `k` items of the array at JSON pointer `pointer` (RFC 6901: object keys
/// and array indices). An item is an object whose `id_field` is a string or number, or a bare
/// string or number; other items are skipped.
pub fn extract_ids<'a>(
    body: &'a [u8],
    pointer: &str,
    id_field: &str,
    k: usize,
) -> Result<Vec<Cow<'a, str>>, ExtractError> {
    at_pointer(body, pointer, Ids { id_field, k })
}

/// The raw text of the array at `pointer` in `body` (a slice of `body` itself, so its place in
/// the body is known), for answers that are rewritten rather than only read.
pub(crate) fn raw_list<'a>(body: &'a [u8], pointer: &str) -> Result<&'a str, ExtractError> {
    at_pointer(body, pointer, Raw).map(RawValue::get)
}

/// The first `k` items of a raw array (from [`raw_list`]) that have an id, each with its id and
/// its own raw text; the items' texts are slices of `list`.
pub(crate) fn raw_items<'a>(
    list: &'a str,
    id_field: &str,
    k: usize,
) -> Result<Vec<(Cow<'a, str>, &'a str)>, ExtractError> {
    let mut de = serde_json::Deserializer::from_str(list);
    de::Deserializer::deserialize_seq(&mut de, RawItems { id_field, k }).map_err(|_| ExtractError::NotJson)
}

/// The items of a raw list, one pass: each item's text, then its id read out of that text.
struct RawItems<'p> {
    id_field: &'p str,
    k: usize,
}

impl<'de> Visitor<'de> for RawItems<'_> {
    type Value = Vec<(Cow<'de, str>, &'de str)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(self.k.min(64));
        while out.len() < self.k {
            let Some(raw) = seq.next_element::<&'de RawValue>()? else { return Ok(out) };
            let mut item = serde_json::Deserializer::from_str(raw.get());
            if let Some(id) = (Item { id_field: self.id_field }).deserialize(&mut item).map_err(de::Error::custom)? {
                out.push((id, raw.get()));
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(out)
    }
}

/// Validates `body` whole and reads `leaf` at `pointer`.
fn at_pointer<'a, L: Leaf<'a>>(body: &'a [u8], pointer: &str, leaf: L) -> Result<L::Out, ExtractError> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        // Not a JSON pointer (validation refuses these): nothing to find, but still say if it is JSON.
        serde_json::from_slice::<IgnoredAny>(body).map_err(|_| ExtractError::NotJson)?;
        return Err(ExtractError::NoList(pointer.to_owned()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = At { pointer, leaf }.deserialize(&mut de).map_err(|_| ExtractError::NotJson)?;
    de.end().map_err(|_| ExtractError::NotJson)?;
    found.ok_or_else(|| ExtractError::NoList(pointer.to_owned()))
}

/// The first reference token of `pointer` (which starts with '/') and the rest.
fn split_token(pointer: &str) -> (Cow<'_, str>, &str) {
    let rest = &pointer[1..];
    let (token, rest) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let token = if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    };
    (token, rest)
}

/// A scalar where a list or a path was expected: nothing found (`None`), not an error.
macro_rules! scalars_lead_nowhere {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// What is read where the pointer ends: `None` when the value there is not a list.
trait Leaf<'de>: Copy {
    type Out;
    fn read<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Self::Out>, D::Error>;
}

/// The ids of the list's first `k` items that have one.
#[derive(Clone, Copy)]
struct Ids<'p> {
    id_field: &'p str,
    k: usize,
}

impl<'de> Leaf<'de> for Ids<'_> {
    type Out = Vec<Cow<'de, str>>;
    fn read<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Self::Out>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Ids<'_> {
    type Value = Option<Vec<Cow<'de, str>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::with_capacity(self.k.min(64));
        while ids.len() < self.k {
            match seq.next_element_seed(Item { id_field: self.id_field })? {
                Some(Some(id)) => ids.push(id),
                Some(None) => {}
                None => return Ok(Some(ids)),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(ids))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    scalars_lead_nowhere!();
}

/// The list's own raw text.
#[derive(Clone, Copy)]
struct Raw;

impl<'de> Leaf<'de> for Raw {
    type Out = &'de RawValue;
    fn read<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Self::Out>, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Ok(raw.get().starts_with('[').then_some(raw))
    }
}

/// Descends along `pointer`; at its end, reads the leaf. `None`: the path leads to no list.
struct At<'p, L> {
    pointer: &'p str,
    leaf: L,
}

impl<'de, L: Leaf<'de>> DeserializeSeed<'de> for At<'_, L> {
    type Value = Option<L::Out>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.pointer.is_empty() {
            self.leaf.read(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de, L: Leaf<'de>> Visitor<'de> for At<'_, L> {
    type Value = Option<L::Out>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = split_token(self.pointer);
        let mut found = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == token {
                // A repeated key: the last one wins, as in `serde_json::Value`.
                found = map.next_value_seed(At { pointer: rest, leaf: self.leaf })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = split_token(self.pointer);
        // RFC 6901 array indices: digits without leading zeros.
        let index = match token.as_bytes() {
            [b'0'] => Some(0),
            [b'1'..=b'9', ..] => token.parse::<usize>().ok(),
            _ => None,
        };
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(At { pointer: rest, leaf: self.leaf })? {
                    Some(f) => found = f,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    scalars_lead_nowhere!();
}

/// An object key, borrowed when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// One list item: its id, if it has one.
struct Item<'p> {
    id_field: &'p str,
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list item")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == self.id_field {
                id = map.next_value_seed(Scalar)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(id)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Scalar.visit_borrowed_str(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Scalar.visit_str(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Scalar.visit_u64(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Scalar.visit_i64(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Scalar.visit_f64(v)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An id value: a string, or a number written as `serde_json` writes it.
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(itoa::Buffer::new().format(v).to_owned())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(itoa::Buffer::new().format(v).to_owned())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
