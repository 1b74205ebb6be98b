//! Interleaving arms: a `[[split.variants]]` entry with `interleave = ["A", "B"]` instead of
//! `model`. It owns a slot of the split like any non-champion (so ramps stay monotonic); its
//! users get a team-draft merge of both models' answers (`proxy::interleave`).
//!
//! Its options live on the variant beside `interleave`: `interleave_wait_ms` (how long past the
//! first usable answer the slower model may take, default [`DEFAULT_WAIT_MS`]), and where the
//! ranked list is in the models' answers — `items_pointer`, `id_field`, `k` — with the same
//! meaning and defaults as for `[[shadow]]`, except that `k` is at most
//! [`MAX_POSITIONS`](crate::interleave::code::MAX_POSITIONS) (the team code carried by the
//! request id describes that many positions).

use std::collections::HashMap;
use std::time::Duration;

use super::split::VariantConfig;
use super::{Issues, MAX_TIMEOUT_MS};
use crate::interleave::code::MAX_POSITIONS;

/// `interleave_wait_ms` when absent.
pub const DEFAULT_WAIT_MS: u64 = 50;
const DEFAULT_ITEMS_POINTER: &str = "/items";
const DEFAULT_ID_FIELD: &str = "item_id";
const DEFAULT_K: usize = 10;

/// A validated arm; `models` index [`Plan::models`](super::Plan::models): `[A, B]`.
#[derive(Debug, Clone, PartialEq)]
pub struct InterleavePlan {
    pub models: [usize; 2],
    pub wait: Duration,
    pub items_pointer: String,
    pub id_field: String,
    pub k: usize,
}

/// Checks the variant's interleaving fields. `None`: not an arm (then none of its options may be
/// set); `Some(None)`: an arm with problems (reported); `Some(Some(plan))`: a valid arm.
pub(super) fn validate(
    issues: &mut Issues,
    path: &str,
    v: &VariantConfig,
    model_index: &HashMap<&str, usize>,
) -> Option<Option<InterleavePlan>> {
    let options = [
        ("interleave_wait_ms", v.interleave_wait_ms.is_some()),
        ("items_pointer", v.items_pointer.is_some()),
        ("id_field", v.id_field.is_some()),
        ("k", v.k.is_some()),
    ];
    let Some(names) = &v.interleave else {
        for (field, set) in options {
            if set {
                issues.add(format!("{path}.{field}"), "only for an interleaving arm (`interleave = [\"A\", \"B\"]`)");
            }
        }
        return None;
    };
    let before = issues.0.len();
    if v.model.is_some() {
        issues.add(
            format!("{path}.interleave"),
            "`model` and `interleave` exclude each other: an interleaving arm serves the two models it names",
        );
    }
    if v.champion {
        issues.add(
            format!("{path}.interleave"),
            "the champion cannot be an interleaving arm: it serves one model, the one the others fall back to",
        );
    }
    let mut models = [0usize; 2];
    if names.len() != 2 {
        issues.add(format!("{path}.interleave"), format!("must name exactly two models, not {}", names.len()));
    } else if names[0] == names[1] {
        issues.add(format!("{path}.interleave"), format!("must name two different models (`{}` twice)", names[0]));
    } else {
        for (j, name) in names.iter().enumerate() {
            match model_index.get(name.as_str()) {
                Some(i) => models[j] = *i,
                None => issues.add(format!("{path}.interleave[{j}]"), format!("no model named `{name}` in [models]")),
            }
        }
    }
    let wait_ms = v.interleave_wait_ms.unwrap_or(DEFAULT_WAIT_MS);
    if wait_ms > MAX_TIMEOUT_MS {
        issues.add(format!("{path}.interleave_wait_ms"), format!("must be between 0 and {MAX_TIMEOUT_MS}"));
    }
    let items_pointer = v.items_pointer.clone().unwrap_or_else(|| DEFAULT_ITEMS_POINTER.to_owned());
    if !(items_pointer.is_empty() || items_pointer.starts_with('/')) {
        issues.add(format!("{path}.items_pointer"), "must be a JSON pointer: empty or starting with `/`");
    }
    let id_field = v.id_field.clone().unwrap_or_else(|| DEFAULT_ID_FIELD.to_owned());
    if id_field.is_empty() {
        issues.add(format!("{path}.id_field"), "must not be empty");
    }
    let k = v.k.unwrap_or(DEFAULT_K);
    if !(1..=MAX_POSITIONS).contains(&k) {
        issues.add(
            format!("{path}.k"),
            format!(
                "must be between 1 and {MAX_POSITIONS} (the team code in the request id holds that many positions)"
            ),
        );
    }
    Some((issues.0.len() == before).then(|| InterleavePlan {
        models,
        wait: Duration::from_millis(wait_ms),
        items_pointer,
        id_field,
        k,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{issues, GOOD};
    use super::super::{parse, validate};

    /// The shipped config with the challenger turned into an interleaving arm; `extra` lines go
    /// into that variant.
    fn arm(extra: &str) -> String {
        GOOD.replace(
            "name = \"challenger\"\nmodel = \"rec-v2-3\"",
            &format!("name = \"interleave-v23\"\ninterleave = [\"rec-v2-2\", \"rec-v2-3\"]\n{extra}"),
        )
    }

    fn messages(text: &str) -> Vec<(String, String)> {
        issues(text).into_iter().map(|i| (i.path, i.message)).collect()
    }

    #[test]
    fn a_valid_arm_and_its_defaults() {
        let plan = validate(&parse(&arm("")).unwrap()).unwrap();
        let v = &plan.variants[1];
        let a = v.interleave.as_ref().unwrap();
        let name = |i: usize| plan.models[i].name.as_str();
        assert_eq!((name(a.models[0]), name(a.models[1])), ("rec-v2-2", "rec-v2-3"));
        assert_eq!(v.model, a.models[0], "an arm's `model` is its team A");
        assert_eq!(
            (a.wait.as_millis(), a.items_pointer.as_str(), a.id_field.as_str(), a.k),
            (50, "/items", "item_id", 10)
        );
        assert_eq!(v.buckets, 1_000, "it owns a slot like any challenger");
        let plan =
            validate(&parse(&arm("interleave_wait_ms = 0\nitems_pointer = \"\"\nid_field = \"id\"\nk = 24")).unwrap())
                .unwrap();
        let a = plan.variants[1].interleave.clone().unwrap();
        assert_eq!((a.wait.as_millis(), a.items_pointer.as_str(), a.id_field.as_str(), a.k), (0, "", "id", 24));
        assert!(plan.variants[0].interleave.is_none());
    }

    #[test]
    fn every_mistake_is_named() {
        assert_eq!(
            messages(&arm("model = \"rec-v2-3\"")),
            [(
                "split.variants[1].interleave".to_owned(),
                "`model` and `interleave` exclude each other: an interleaving arm serves the two models it names"
                    .to_owned()
            )]
        );
        let m = messages(&arm("").replace("[\"rec-v2-2\", \"rec-v2-3\"]", "[\"rec-v2-2\", \"ghost\"]"));
        assert_eq!(
            m,
            [("split.variants[1].interleave[1]".to_owned(), "no model named `ghost` in [models]".to_owned())]
        );
        let m = messages(&arm("").replace("[\"rec-v2-2\", \"rec-v2-3\"]", "[\"rec-v2-2\"]"));
        assert_eq!(m[0].1, "must name exactly two models, not 1");
        let m = messages(&arm("").replace("[\"rec-v2-2\", \"rec-v2-3\"]", "[\"rec-v2-3\", \"rec-v2-3\"]"));
        assert_eq!(m[0].1, "must name two different models (`rec-v2-3` twice)");
        let m = messages(&arm("k = 25\nid_field = \"\"\nitems_pointer = \"items\"\ninterleave_wait_ms = 600001"));
        let paths: Vec<&str> = m.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "split.variants[1].interleave_wait_ms",
                "split.variants[1].items_pointer",
                "split.variants[1].id_field",
                "split.variants[1].k"
            ]
        );
        assert!(m[3].1.contains("between 1 and 24"), "{}", m[3].1);
    }

    #[test]
    fn the_champion_cannot_interleave_and_plain_variants_take_no_arm_options() {
        let text = GOOD.replacen("model = \"rec-v2-2\"", "interleave = [\"rec-v2-2\", \"rec-v2-3\"]", 1);
        let m = messages(&text);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].0, "split.variants[0].interleave");
        assert!(m[0].1.starts_with("the champion cannot be an interleaving arm"), "{}", m[0].1);
        let text = GOOD.replace("weight = 10", "weight = 10\nk = 5\ninterleave_wait_ms = 20");
        let m = messages(&text);
        assert_eq!(
            m.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["split.variants[1].interleave_wait_ms", "split.variants[1].k"]
        );
        assert!(m[0].1.starts_with("only for an interleaving arm"), "{}", m[0].1);
        let text = GOOD.replace("model = \"rec-v2-3\"\n", "");
        assert_eq!(messages(&text)[0].0, "split.variants[1].model");
        assert!(messages(&text)[0].1.starts_with("required (or `interleave"), "{:?}", messages(&text));
    }
}
