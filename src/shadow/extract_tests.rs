use super::*;
use serde_json::Value;

/// The definition the streaming extractor must match: build the whole `Value`, follow the pointer.
fn reference(body: &[u8], pointer: &str, id_field: &str, k: usize) -> Result<Vec<String>, ExtractError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| ExtractError::NotJson)?;
    let list =
        doc.pointer(pointer).and_then(Value::as_array).ok_or_else(|| ExtractError::NoList(pointer.to_owned()))?;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Ok(list
        .iter()
        .filter_map(|item| match item {
            Value::Object(o) => o.get(id_field).and_then(scalar),
            other => scalar(other),
        })
        .take(k)
        .collect())
}

fn owned(r: Result<Vec<Cow<'_, str>>, ExtractError>) -> Result<Vec<String>, ExtractError> {
    r.map(|v| v.into_iter().map(Cow::into_owned).collect())
}

fn agree(body: &str, pointer: &str, id_field: &str, k: usize) {
    let got = owned(extract_ids(body.as_bytes(), pointer, id_field, k));
    assert_eq!(got, reference(body.as_bytes(), pointer, id_field, k), "{body} at {pointer:?} ({id_field}, k={k})");
}

#[test]
fn hand_picked_documents_agree_with_the_definition() {
    let docs = [
        r#"{"items":[{"item_id":"x","score":1},{"item_id":7},{"other":1},"bare",3,null,true,[1],{"item_id":{"a":1}}]}"#,
        r#"{"items":[{"item_id":"a\"b"},{"item_id":"\u00e9"},{"item_id":-4},{"item_id":1.5},{"item_id":1e3}]}"#,
        r#"{"items":[{"item_id":"a","item_id":"b"}],"items":[{"item_id":"last"}]}"#,
        r#"{"items":[1,2],"items":{"not":"a list"}}"#,
        r#"{"r":{"l":[{"id":"q"}],"m":[]},"a/b":[{"id":"slash"}],"t~n":[{"id":"tilde"}]}"#,
        r#"{"results":[{"items":["x0"]},{"items":["y0","y1"]}]}"#,
        r#"["a","b",{"id":"c"}]"#,
        r#"{"items":3}"#,
        r#"{"items":"abc"}"#,
        r#"{"it\u0065ms":["escaped-key"]}"#,
        r#"{}"#,
        r#"[]"#,
        r#"null"#,
        r#"{"items":[{"item_id":"x"}]} trailing"#,
        r#"{"items":[{"item_id":"x"}"#,
        r#"nope"#,
    ];
    let pointers = [
        "/items",
        "",
        "/r/l",
        "/r/m",
        "/a~1b",
        "/t~0n",
        "/results/1/items",
        "/results/01/items",
        "/results/2/items",
        "/results/-/items",
        "/missing",
    ];
    for doc in docs {
        for pointer in pointers {
            for id_field in ["item_id", "id"] {
                for k in [0, 1, 2, 10] {
                    agree(doc, pointer, id_field, k);
                }
            }
        }
    }
}

/// A small deterministic generator of JSON documents shaped like model answers, with noise.
struct Gen(crate::testing::SplitMix);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0.next()
    }

    fn value(&mut self, depth: u32) -> String {
        match self.next() % if depth > 2 { 5 } else { 8 } {
            0 => "null".into(),
            1 => (self.next() % 1000).to_string(),
            2 => format!("\"s{}\\n\"", self.next() % 50),
            3 => "-2.5".into(),
            4 => "true".into(),
            5 => format!("[{}]", (0..self.next() % 4).map(|_| self.value(depth + 1)).collect::<Vec<_>>().join(",")),
            6 => self.item(depth),
            _ => format!("{{\"items\":{}}}", self.list(depth + 1)),
        }
    }

    fn item(&mut self, depth: u32) -> String {
        let id = match self.next() % 4 {
            0 => format!("\"item_id\":\"sku-{}\"", self.next() % 20),
            1 => format!("\"item_id\":{}", self.next() % 20),
            2 => format!("\"item_id\":{}", self.value(depth + 1)),
            _ => "\"score\":0.5".into(),
        };
        format!("{{{id},\"extra\":{}}}", self.value(depth + 1))
    }

    fn list(&mut self, depth: u32) -> String {
        let n = self.next() % 14;
        format!(
            "[{}]",
            (0..n)
                .map(|_| if self.next().is_multiple_of(5) { self.value(depth) } else { self.item(depth) })
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

#[test]
fn generated_documents_agree_with_the_definition() {
    let mut g = Gen(crate::testing::SplitMix(7));
    for _ in 0..3_000 {
        let doc = match g.next() % 3 {
            0 => format!("{{\"model\":\"m\",\"items\":{},\"pad\":{}}}", g.list(0), g.value(1)),
            1 => format!("{{\"data\":{{\"items\":{}}},\"items\":{}}}", g.list(0), g.value(1)),
            _ => g.value(0),
        };
        for pointer in ["/items", "/data/items", "", "/items/0/items"] {
            agree(&doc, pointer, "item_id", 10);
            agree(&doc, pointer, "item_id", 3);
        }
    }
}

#[test]
fn unescaped_ids_are_borrowed_from_the_body() {
    let body = br#"{"items":[{"item_id":"plain"},{"item_id":"esc\"aped"},{"item_id":12}]}"#;
    let ids = extract_ids(body, "/items", "item_id", 10).unwrap();
    assert!(matches!(ids[0], Cow::Borrowed("plain")));
    assert!(matches!(&ids[1], Cow::Owned(s) if s == "esc\"aped"));
    assert!(matches!(&ids[2], Cow::Owned(s) if s == "12"));
}

#[test]
fn a_pointer_without_a_leading_slash_finds_nothing() {
    assert_eq!(extract_ids(br#"{"items":[1]}"#, "items", "id", 5), Err(ExtractError::NoList("items".into())));
    assert_eq!(extract_ids(b"{", "items", "id", 5), Err(ExtractError::NotJson));
}
