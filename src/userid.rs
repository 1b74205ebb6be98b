//! Finding the user id in a request body without building a JSON tree. Pure, no I/O.
//!
//! The body is checked in one streaming pass — UTF-8, JSON syntax, no trailing data — so malformed
//! bodies are rejected before they reach a model, but only the one top-level field we need is
//! materialised; every other value is skipped with `IgnoredAny`. (Skipped values are not checked
//! for lone surrogate escapes or serde_json's nesting limit; the model sees those bodies as sent.) An unescaped id is borrowed from the body, so the common case
//! allocates nothing. The body itself is never re-serialised: the model gets the caller's bytes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Longest user id accepted; longer ones are caller bugs, not users.
pub const MAX_USER_ID_BYTES: usize = 256;

/// Parses `body` as JSON and returns the top-level string field `field`, if present.
///
/// `Ok(None)`: valid JSON without that field (or not an object). `Err`: not valid JSON, trailing
/// garbage, nesting deeper than serde_json's recursion limit, the field is not a string, or the
/// field appears twice at the top level. Duplicates are refused rather than resolved: parsers
/// disagree on which one wins (Python, JS and Go take the last), and a proxy that picked one
/// while the model read the other would let a caller choose its variant for another user.
pub fn from_json<'a>(body: &'a [u8], field: &str) -> Result<Option<Cow<'a, str>>, serde_json::Error> {
    // Skipped strings are not UTF-8 checked by serde_json; one pass over the bytes closes that gap
    // (JSON must be UTF-8) for a few tens of nanoseconds.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(serde::de::Error::custom(format!("body is not UTF-8 (byte {})", e.valid_up_to())));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Finder { field }.deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

struct Finder<'f> {
    field: &'f str,
}

impl<'de> DeserializeSeed<'de> for Finder<'_> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Finder<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_field) = map.next_key_seed(KeyIs(self.field))? {
            if is_field {
                if found.is_some() {
                    return Err(serde::de::Error::custom(format_args!("duplicate field `{}`", self.field)));
                }
                found = Some(map.next_value_seed(StringValue(self.field))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Compares a map key with the wanted field without allocating, escaped keys included.
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The field's value: borrowed when the JSON string has no escapes, owned otherwise.
struct StringValue<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for StringValue<'_> {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StringValue<'_> {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "field `{}` to be a string", self.0)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(body: &str) -> Result<Option<String>, String> {
        from_json(body.as_bytes(), "user_id").map(|o| o.map(|c| c.into_owned())).map_err(|e| e.to_string())
    }

    #[test]
    fn finds_top_level_string() {
        assert_eq!(find(r#"{"user_id":"u1"}"#), Ok(Some("u1".into())));
        assert_eq!(find(r#"{"a":{"user_id":"nested"},"user_id":"top","b":[1,{"c":null}]}"#), Ok(Some("top".into())));
        assert_eq!(find(r#" { "context" : [1,2.5,true,null,"x"] , "user_id" : "u 2" } "#), Ok(Some("u 2".into())));
    }

    #[test]
    fn borrows_unescaped_ids() {
        let body = br#"{"user_id":"plain"}"#;
        assert!(matches!(from_json(body, "user_id"), Ok(Some(Cow::Borrowed("plain")))));
    }

    #[test]
    fn decodes_escapes_in_keys_and_values() {
        assert_eq!(find(r#"{"user\u005fid":"a\"b\u00e9"}"#), Ok(Some("a\"bé".into())));
    }

    #[test]
    fn nested_or_absent_field_is_none() {
        assert_eq!(find(r#"{"ctx":{"user_id":"u1"}}"#), Ok(None));
        assert_eq!(find(r#"{}"#), Ok(None));
        assert_eq!(find(r#"[{"user_id":"u1"}]"#), Ok(None));
        assert_eq!(find(r#""user_id""#), Ok(None));
        assert_eq!(find("42"), Ok(None));
        assert_eq!(find("null"), Ok(None));
    }

    #[test]
    fn duplicate_top_level_ids_are_refused() {
        for body in [
            r#"{"user_id":"first","user_id":"second"}"#,
            r#"{"user_id":"same","user_id":"same"}"#,
            r#"{"user_id":"a","x":1,"user\u005fid":"b"}"#,
        ] {
            let e = find(body).unwrap_err();
            assert!(e.contains("duplicate field `user_id`"), "{body}: {e}");
        }
        // Only the top level counts: a nested `user_id` is another object's field.
        assert_eq!(find(r#"{"user_id":"top","ctx":{"user_id":"inner"}}"#), Ok(Some("top".into())));
    }

    #[test]
    fn rejects_invalid_json_and_wrong_types() {
        for bad in [
            "",
            "{",
            r#"{"user_id":"u1""#,
            r#"{"user_id":"u1"} trailing"#,
            r#"{"user_id":12}"#,
            r#"{"user_id":null}"#,
            r#"{"user_id":["a"]}"#,
            r#"{"a":[1,2,}"#,
            "\u{feff}{}",
            r#"{"user_id":"\ud800"}"#,
        ] {
            assert!(find(bad).is_err(), "accepted {bad:?}");
        }
        assert!(from_json(&[0xff, 0xfe], "user_id").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(find(&deep).is_err());
        let deep_obj = format!("{{\"a\":{}", "{\"a\":".repeat(10_000));
        assert!(find(&deep_obj).is_err());
    }

    #[test]
    fn custom_field_name() {
        let body = br#"{"user_id":"no","customer":"yes"}"#;
        assert_eq!(from_json(body, "customer").unwrap().as_deref(), Some("yes"));
    }
}
