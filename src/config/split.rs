//! `[split]` and `[[split.variants]]`: the salt, where the user id comes from, and the variants
//! with their weights and slots, validated into a bucket [`Layout`].

use std::collections::HashMap;

use http::header::HeaderName;
use serde::{Deserialize, Serialize};

use super::interleave::{self, InterleavePlan};
use super::{valid_name, Issues};
use crate::split::{percent_to_buckets, Layout, LayoutError, Slot};

/// `[split]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    pub salt: String,
    #[serde(default = "default_user_id_field")]
    pub user_id_field: String,
    #[serde(default = "default_user_id_header")]
    pub user_id_header: String,
    #[serde(default)]
    pub variants: Vec<VariantConfig>,
    /// Retry a failed non-champion request (connect error, 5xx, timeout) once on the champion.
    #[serde(default)]
    pub fallback_to_champion: bool,
}

fn default_user_id_field() -> String {
    "user_id".into()
}

fn default_user_id_header() -> String {
    "x-user-id".into()
}

/// `[[split.variants]]`: a variant serves one `model`, or — an interleaving arm — merges the
/// answers of the two models in `interleave` (`config::interleave`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    pub name: String,
    /// Required unless `interleave` is set (they exclude each other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Percent of users, up to two decimals; all variants add up to 100.
    pub weight: f64,
    #[serde(default)]
    pub champion: bool,
    /// Optional fixed `[from, to)` range of the bucket space in percent for a non-champion
    /// variant. By default the space is divided equally among non-champions in config order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<[f64; 2]>,
    /// Two models `[A, B]`: this variant is an interleaving arm (see `config::interleave`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interleave: Option<Vec<String>>,
    /// An arm's wait for its slower model past the faster one's answer (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interleave_wait_ms: Option<u64>,
    /// An arm's list in the models' answers, as for shadows (default `/items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_pointer: Option<String>,
    /// An arm's item id field (default `item_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// An arm's page size (default 10, at most 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
}

/// A validated variant; `model` indexes [`Plan::models`](super::Plan::models). For an
/// interleaving arm `model` is its first model (team A) and `interleave` holds both.
#[derive(Debug, Clone)]
pub struct VariantPlan {
    pub name: String,
    pub model: usize,
    pub buckets: u32,
    pub champion: bool,
    pub interleave: Option<InterleavePlan>,
}

/// What `[split]` contributes to the plan; the `Option`s are `None` when that part is invalid.
pub(super) struct SplitParts {
    pub salt: String,
    pub user_id_field: String,
    pub user_id_header: Option<HeaderName>,
    pub fallback_to_champion: bool,
    pub variants: Vec<VariantPlan>,
    pub champion: Option<usize>,
    pub layout: Option<Layout>,
}

/// Checks `[split]` (required: a missing one is an issue, then checked as an empty split so the
/// rest of the file is still reported).
pub(super) fn validate(
    issues: &mut Issues,
    split: Option<&SplitConfig>,
    model_index: &HashMap<&str, usize>,
) -> SplitParts {
    let missing;
    let split = match split {
        Some(s) => s,
        None => {
            issues.add("split", "required (in this file, or in the DynamoDB item when [source] kind = \"dynamodb\")");
            missing = SplitConfig {
                salt: "-".into(),
                user_id_field: default_user_id_field(),
                user_id_header: default_user_id_header(),
                variants: Vec::new(),
                fallback_to_champion: false,
            };
            &missing
        }
    };
    if split.salt.is_empty() {
        issues.add("split.salt", "must not be empty (changing it reshuffles every user)");
    }
    if split.user_id_field.is_empty() {
        issues.add("split.user_id_field", "must not be empty");
    }
    let user_id_header = match HeaderName::from_bytes(split.user_id_header.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            issues.add("split.user_id_header", format!("`{}` is not a valid header name", split.user_id_header));
            None
        }
    };
    let (variants, champion, layout) = validate_variants(issues, &split.variants, model_index);
    SplitParts {
        salt: split.salt.clone(),
        user_id_field: split.user_id_field.clone(),
        user_id_header,
        fallback_to_champion: split.fallback_to_champion,
        variants,
        champion,
        layout,
    }
}

fn validate_variants(
    issues: &mut Issues,
    vs: &[VariantConfig],
    model_index: &HashMap<&str, usize>,
) -> (Vec<VariantPlan>, Option<usize>, Option<Layout>) {
    let mut variants = Vec::new();
    let mut names = HashMap::new();
    let mut slots = Vec::new();
    let mut weights_ok = true;
    if vs.is_empty() {
        issues.add("split.variants", "at least one variant is required");
    }
    for (i, v) in vs.iter().enumerate() {
        let path = format!("split.variants[{i}]");
        if !valid_name(&v.name) {
            issues.add(format!("{path}.name"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        } else if let Some(first) = names.insert(v.name.as_str(), i) {
            issues.add(format!("{path}.name"), format!("duplicate of split.variants[{first}].name"));
        }
        let arm = interleave::validate(issues, &path, v, model_index);
        let model = match (&v.model, &arm) {
            (Some(m), _) => {
                let found = model_index.get(m.as_str()).copied();
                if found.is_none() {
                    issues.add(format!("{path}.model"), format!("no model named `{m}` in [models]"));
                }
                found
            }
            (None, Some(arm)) => arm.as_ref().map(|a| a.models[0]),
            (None, None) => {
                issues.add(
                    format!("{path}.model"),
                    "required (or `interleave = [\"A\", \"B\"]` for an interleaving arm)",
                );
                None
            }
        };
        let buckets = percent_to_buckets(v.weight);
        if buckets.is_none() {
            weights_ok = false;
            issues.add(format!("{path}.weight"), "must be a percentage from 0 to 100 with at most two decimals");
        }
        let slot = v.slot.and_then(|[from, to]| match (percent_to_buckets(from), percent_to_buckets(to)) {
            (Some(start), Some(end)) if start < end => Some(Slot { start, end }),
            _ => {
                issues.add(format!("{path}.slot"), "must be [from, to] percentages with from < to");
                None
            }
        });
        if v.champion && v.slot.is_some() {
            issues.add(format!("{path}.slot"), "the champion has no slot: it owns what the others leave");
        }
        slots.push(slot);
        variants.push(VariantPlan {
            name: v.name.clone(),
            model: model.unwrap_or(0),
            buckets: buckets.unwrap_or(0),
            champion: v.champion,
            interleave: arm.flatten(),
        });
    }
    let champions: Vec<usize> = vs.iter().enumerate().filter(|(_, v)| v.champion).map(|(i, _)| i).collect();
    let champion = match champions.as_slice() {
        [one] => Some(*one),
        [] => {
            if !vs.is_empty() {
                issues.add("split.variants", "exactly one variant must have champion = true; none has");
            }
            None
        }
        many => {
            issues.add("split.variants", format!("exactly one variant must have champion = true; {} have", many.len()));
            None
        }
    };
    let layout = match champion {
        Some(c) if weights_ok => {
            let weights: Vec<u32> = variants.iter().map(|v| v.buckets).collect();
            match Layout::new(&weights, c, &slots) {
                Ok(l) => Some(l),
                Err(e) => {
                    let (path, msg) = layout_issue(&e);
                    issues.add(path, msg);
                    None
                }
            }
        }
        _ => None,
    };
    (variants, champion, layout)
}

/// Where a layout error belongs and how to say it in percent (the layout counts buckets).
fn layout_issue(e: &LayoutError) -> (String, String) {
    match e {
        LayoutError::Sum(s) => (
            "split.variants".to_owned(),
            format!("weights add up to {}, they must add up to 100", f64::from(*s) / 100.0),
        ),
        LayoutError::SlotTooSmall { variant, weight, capacity } => (
            format!("split.variants[{variant}].weight"),
            format!(
                "{} exceeds this variant's slot of {} (set `slot` or reorder variants)",
                f64::from(*weight) / 100.0,
                f64::from(*capacity) / 100.0
            ),
        ),
        LayoutError::BadSlot { variant, .. } => (format!("split.variants[{variant}].slot"), e.to_string()),
        LayoutError::Overlap { b, .. } => (format!("split.variants[{b}].slot"), e.to_string()),
        LayoutError::TooMany(_) => ("split.variants".to_owned(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{issues, paths, GOOD};

    #[test]
    fn weights_must_sum_to_100() {
        let text = GOOD.replace("weight = 10", "weight = 20");
        let i = issues(&text);
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].path, "split.variants");
        assert!(i[0].message.contains("110"), "{}", i[0].message);
    }

    #[test]
    fn exactly_one_champion() {
        assert!(paths(&GOOD.replace("champion = true", "")).contains(&"split.variants".to_owned()));
        let two = GOOD.replace("weight = 10", "weight = 10\nchampion = true");
        assert!(issues(&two).iter().any(|i| i.message.contains("2 have")));
    }

    #[test]
    fn duplicate_names_and_bad_urls() {
        let text = GOOD
            .replace("name = \"challenger\"", "name = \"champion\"")
            .replace("backend = \"builtin\"\n\n[split]", "backend = \"http\"\nurl = \"ftp://x\"\n\n[split]");
        let p = paths(&text);
        assert!(p.contains(&"split.variants[1].name".to_owned()), "{p:?}");
        assert!(p.contains(&"models.rec-v2-3.url".to_owned()), "{p:?}");
    }

    #[test]
    fn slot_capacity_is_enforced() {
        let text = format!("{GOOD}\n[[split.variants]]\nname = \"third\"\nmodel = \"rec-v2-3\"\nweight = 0\n")
            .replace("weight = 90", "weight = 30")
            .replace("weight = 10", "weight = 70");
        let i = issues(&text);
        assert_eq!(i[0].path, "split.variants[1].weight", "{i:?}");
        assert!(i[0].message.contains("slot of 50"), "{}", i[0].message);
    }
}
