//! Reading a model's ranked list for the merge, and writing the merged answer in the models' own
//! JSON shape. Pure, no I/O.
//!
//! The list is found the way shadows find it (`items_pointer`, `id_field`, `k`, through
//! `shadow::extract`), but kept as byte ranges of the answer: the merged answer is the first
//! model's answer with the array at `items_pointer` replaced by the merged items, each item's
//! JSON copied byte for byte from the answer that contributed it. Every other field of the first
//! model's answer, and each item's own fields (scores, metadata), stay as the model wrote them.
//! Items without an id cannot be de-duplicated or credited, so they are left out — as shadow
//! comparison skips them.

use std::borrow::Cow;
use std::ops::Range;

use crate::shadow::compare::ExtractError;
use crate::shadow::extract::{raw_items, raw_list};

/// A model's list: where the array is in the answer, and its first `k` items with an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// The array's bytes in the answer, brackets included.
    pub list: Range<usize>,
    pub items: Vec<Entry>,
}

/// One item: its JSON text and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub raw: Range<usize>,
    id: Id,
}

/// An id is nearly always a slice of the answer; one with escapes is decoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Id {
    Span(Range<usize>),
    Owned(Box<str>),
}

/// The byte range `part` occupies inside `whole` (`part` must be a subslice of it).
fn span(whole: &[u8], part: &str) -> Result<Range<usize>, ExtractError> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize).ok_or(ExtractError::NotJson)?;
    let end = start.checked_add(part.len()).filter(|e| *e <= whole.len()).ok_or(ExtractError::NotJson)?;
    Ok(start..end)
}

/// The list in `body` at `pointer`: its range and its first `k` items that have an `id_field`.
pub fn ranked(body: &[u8], pointer: &str, id_field: &str, k: usize) -> Result<Ranked, ExtractError> {
    let list = raw_list(body, pointer)?;
    let items = raw_items(list, id_field, k)?
        .into_iter()
        .map(|(id, raw)| {
            let id = match id {
                Cow::Borrowed(s) => Id::Span(span(body, s)?),
                Cow::Owned(s) => Id::Owned(s.into_boxed_str()),
            };
            Ok(Entry { raw: span(body, raw)?, id })
        })
        .collect::<Result<Vec<_>, ExtractError>>()?;
    Ok(Ranked { list: span(body, list)?, items })
}

impl Ranked {
    /// The ids, in order (borrowed from `body`, the answer this list was read from).
    pub fn ids<'a>(&'a self, body: &'a [u8]) -> Vec<&'a str> {
        self.items.iter().map(|e| e.id(body)).collect()
    }
}

impl Entry {
    /// The id (`body` is the answer the entry was read from).
    pub fn id<'a>(&'a self, body: &'a [u8]) -> &'a str {
        match &self.id {
            Id::Span(r) => body.get(r.clone()).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or(""),
            Id::Owned(s) => s,
        }
    }
}

/// `template` with the bytes in `list` replaced by a JSON array of `items` (raw JSON values).
pub fn render<'a>(template: &[u8], list: Range<usize>, items: impl Iterator<Item = &'a [u8]> + Clone) -> Vec<u8> {
    let inner: usize = items.clone().map(|i| i.len() + 1).sum();
    let mut out = Vec::with_capacity(template.len() - list.len() + inner + 2);
    out.extend_from_slice(&template[..list.start]);
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out.extend_from_slice(&template[list.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(body: &'a [u8], r: &Ranked) -> Vec<&'a str> {
        r.items.iter().map(|e| std::str::from_utf8(&body[e.raw.clone()]).unwrap()).collect()
    }

    #[test]
    fn finds_the_list_and_its_items_as_ranges() {
        let body = br#"{"model":"v1","items":[{"item_id":"a","score":0.9}, {"x":1},{"item_id":7},"bare",{"item_id":"c\"q"}],"n":3}"#;
        let r = ranked(body, "/items", "item_id", 10).unwrap();
        assert_eq!(
            &body[r.list.clone()],
            br#"[{"item_id":"a","score":0.9}, {"x":1},{"item_id":7},"bare",{"item_id":"c\"q"}]"#
        );
        assert_eq!(r.ids(body), ["a", "7", "bare", "c\"q"], "items without an id are left out");
        assert_eq!(
            raw(body, &r),
            [r#"{"item_id":"a","score":0.9}"#, r#"{"item_id":7}"#, r#""bare""#, r#"{"item_id":"c\"q"}"#]
        );
        assert_eq!(ranked(body, "/items", "item_id", 2).unwrap().ids(body), ["a", "7"]);
        // The whole body as the list, and a nested pointer.
        let list = br#" [ {"id":"x"} , {"id":"y"} ] "#;
        let r = ranked(list, "", "id", 10).unwrap();
        assert_eq!(&list[r.list.clone()], br#"[ {"id":"x"} , {"id":"y"} ]"#);
        let nested = br#"{"data":{"recs":[{"id":"x"}]}}"#;
        assert_eq!(ranked(nested, "/data/recs", "id", 10).unwrap().ids(nested), ["x"]);
    }

    #[test]
    fn agrees_with_the_shadow_extractor() {
        for body in [
            &br#"{"items":[{"item_id":"x","score":1},{"item_id":7},{"other":1},"bare",3,null,true,[1],{"item_id":{"a":1}}]}"#[..],
            br#"{"items":[{"item_id":"a\"b"},{"item_id":"\u00e9"},{"item_id":-4},{"item_id":1.5},{"item_id":1e3}]}"#,
            br#"{"items":[{"item_id":"a","item_id":"b"}],"items":[{"item_id":"last"}]}"#,
        ] {
            let want = crate::shadow::compare::extract_ids(body, "/items", "item_id", 10).unwrap();
            assert_eq!(ranked(body, "/items", "item_id", 10).unwrap().ids(body), want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn refuses_what_has_no_list() {
        assert_eq!(ranked(b"nope", "/items", "id", 10), Err(ExtractError::NotJson));
        assert_eq!(ranked(br#"{"items":3}"#, "/items", "id", 10), Err(ExtractError::NoList("/items".into())));
        assert_eq!(ranked(br#"{"items":{"a":1}}"#, "/items", "id", 10), Err(ExtractError::NoList("/items".into())));
        assert_eq!(ranked(br#"{"other":[]}"#, "/items", "id", 10), Err(ExtractError::NoList("/items".into())));
        assert_eq!(ranked(br#"{"items":[]} x"#, "/items", "id", 10), Err(ExtractError::NotJson));
    }

    #[test]
    fn renders_in_the_templates_shape() {
        let a = br#"{"user_id":"u","items":[{"item_id":"a1"},{"item_id":"x"}],"model":"v1"}"#;
        let b = br#"{"items":[{"item_id":"b1","score":0.5}]}"#;
        let (ra, rb) = (ranked(a, "/items", "item_id", 10).unwrap(), ranked(b, "/items", "item_id", 10).unwrap());
        let items = [&b[rb.items[0].raw.clone()], &a[ra.items[1].raw.clone()]];
        let out = render(a, ra.list.clone(), items.iter().copied());
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"user_id":"u","items":[{"item_id":"b1","score":0.5},{"item_id":"x"}],"model":"v1"}"#
        );
        let empty = render(a, ra.list, std::iter::empty());
        assert_eq!(std::str::from_utf8(&empty).unwrap(), r#"{"user_id":"u","items":[],"model":"v1"}"#);
    }
}
