//! Operator changes as pure edits of config text: weights, promote, rollback, and the dry-run
//! estimate of who would move. Editing the TOML in place (not re-serialising a struct) keeps the
//! operator's comments and layout in the file or DynamoDB document.

use std::collections::BTreeMap;

use toml_edit::{value, DocumentMut, Item, Table};

use crate::split::{percent_to_buckets, Layout, BUCKETS};

/// Why an edit cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("the config is not valid TOML: {0}")]
    Parse(#[source] toml_edit::TomlError),
    #[error("the config has no [[split.variants]]")]
    NoVariants,
    #[error("unknown variant `{0}`")]
    UnknownVariant(String),
    #[error("`{0}` is the champion: it absorbs the difference; set the other variants")]
    ChampionWeight(String),
    #[error("weight {1} for `{0}` is not a percentage with at most two decimals")]
    BadWeight(String, f64),
    #[error("new weights leave the champion {0}%: the others add up to more than 100")]
    Overcommitted(f64),
    #[error("no variant is marked champion = true")]
    NoChampion,
    #[error("`{0}` is an interleaving arm: it compares two models and has none to promote; promote a variant serving the model that won")]
    Interleaving(String),
}

impl EditError {
    /// True when the text being edited is itself unusable (422), rather than the edit asked
    /// for something wrong (400).
    pub fn makes_config_invalid(&self) -> bool {
        matches!(self, EditError::Parse(_) | EditError::NoVariants | EditError::NoChampion)
    }
}

/// A variant as read from the text.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantView {
    pub name: String,
    pub model: String,
    pub weight: f64,
    pub champion: bool,
}

fn variants_mut(doc: &mut DocumentMut) -> Result<&mut toml_edit::ArrayOfTables, EditError> {
    doc.get_mut("split")
        .and_then(Item::as_table_mut)
        .and_then(|t| t.get_mut("variants"))
        .and_then(Item::as_array_of_tables_mut)
        .ok_or(EditError::NoVariants)
}

fn view(t: &Table) -> VariantView {
    let weight = t.get("weight").and_then(|w| w.as_float().or_else(|| w.as_integer().map(|i| i as f64))).unwrap_or(0.0);
    VariantView {
        name: t.get("name").and_then(Item::as_str).unwrap_or("").to_owned(),
        model: t.get("model").and_then(Item::as_str).unwrap_or("").to_owned(),
        weight,
        champion: t.get("champion").and_then(Item::as_bool).unwrap_or(false),
    }
}

/// The variants in `text`, in order.
pub fn read_variants(text: &str) -> Result<Vec<VariantView>, EditError> {
    let mut doc: DocumentMut = text.parse().map_err(EditError::Parse)?;
    Ok(variants_mut(&mut doc)?.iter().map(view).collect())
}

fn weight_item(w: f64) -> Item {
    if w.fract() == 0.0 {
        value(w as i64)
    } else {
        value((w * 100.0).round() / 100.0)
    }
}

/// Sets the given non-champion weights; the champion absorbs the difference.
pub fn set_weights(text: &str, changes: &BTreeMap<String, f64>) -> Result<String, EditError> {
    let mut doc: DocumentMut = text.parse().map_err(EditError::Parse)?;
    let variants = variants_mut(&mut doc)?;
    let views: Vec<VariantView> = variants.iter().map(view).collect();
    let champion = views.iter().position(|v| v.champion).ok_or(EditError::NoChampion)?;
    for (name, w) in changes {
        let i = views.iter().position(|v| &v.name == name).ok_or_else(|| EditError::UnknownVariant(name.clone()))?;
        if i == champion {
            return Err(EditError::ChampionWeight(name.clone()));
        }
        if percent_to_buckets(*w).is_none() {
            return Err(EditError::BadWeight(name.clone(), *w));
        }
    }
    let mut others = 0u32;
    for (i, v) in views.iter().enumerate() {
        if i != champion {
            let w = changes.get(&v.name).copied().unwrap_or(v.weight);
            others += percent_to_buckets(w).unwrap_or(0);
        }
    }
    if others > BUCKETS {
        return Err(EditError::Overcommitted((f64::from(BUCKETS) - f64::from(others)) / 100.0));
    }
    for (i, t) in variants.iter_mut().enumerate() {
        if i == champion {
            t["weight"] = weight_item(f64::from(BUCKETS - others) / 100.0);
        } else if let Some(w) = changes.get(&views[i].name) {
            t["weight"] = weight_item(*w);
        }
    }
    Ok(doc.to_string())
}

/// Every non-champion to 0%, the champion to 100%.
pub fn rollback(text: &str) -> Result<String, EditError> {
    let views = read_variants(text)?;
    let changes = views.iter().filter(|v| !v.champion).map(|v| (v.name.clone(), 0.0)).collect();
    set_weights(text, &changes)
}

/// `variant`'s model becomes the champion's, at 100%; `variant` goes to 0%.
pub fn promote(text: &str, variant: &str) -> Result<String, EditError> {
    let mut doc: DocumentMut = text.parse().map_err(EditError::Parse)?;
    let variants = variants_mut(&mut doc)?;
    let views: Vec<VariantView> = variants.iter().map(view).collect();
    let champion = views.iter().position(|v| v.champion).ok_or(EditError::NoChampion)?;
    let winner =
        views.iter().position(|v| v.name == variant).ok_or_else(|| EditError::UnknownVariant(variant.into()))?;
    if winner == champion {
        return Err(EditError::ChampionWeight(variant.into()));
    }
    if variants.get(winner).is_some_and(|t| t.contains_key("interleave")) {
        return Err(EditError::Interleaving(variant.into()));
    }
    if let Some(t) = variants.get_mut(champion) {
        t["model"] = value(views[winner].model.clone());
    }
    let text = doc.to_string();
    rollback(&text)
}

/// The weights in `text` as bucket counts with the champion's index (for dry runs).
fn layout_of(views: &[VariantView]) -> Option<Layout> {
    let champion = views.iter().position(|v| v.champion)?;
    let weights: Vec<u32> = views.iter().map(|v| percent_to_buckets(v.weight).unwrap_or(0)).collect();
    Layout::new(&weights, champion, &vec![None; views.len()]).ok()
}

/// Dry run: of the traffic in `bucket_counts` (requests per bucket over the last hour), how much
/// would change variant between the two configs. Returns (moved, total).
pub fn estimate_moved(before: &[VariantView], after: &[VariantView], bucket_counts: &[u64]) -> (u64, u64) {
    let (Some(a), Some(b)) = (layout_of(before), layout_of(after)) else { return (0, bucket_counts.iter().sum()) };
    let mut moved = 0;
    for (bucket, n) in bucket_counts.iter().enumerate() {
        let (x, y) = (a.variant_of(bucket as u32), b.variant_of(bucket as u32));
        if before.get(x).map(|v| &v.name) != after.get(y).map(|v| &v.name) {
            moved += n;
        }
    }
    (moved, bucket_counts.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# top comment
[split]
salt = "s"
[[split.variants]]
name = "champion"   # keep me
model = "rec-v2-2"
weight = 90
champion = true
[[split.variants]]
name = "challenger"
model = "rec-v2-3"
weight = 10
"#;

    fn changes(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn champion_absorbs_and_comments_survive() {
        let out = set_weights(TEXT, &changes(&[("challenger", 50.0)])).unwrap();
        assert!(out.contains("# top comment") && out.contains("# keep me"), "{out}");
        let v = read_variants(&out).unwrap();
        assert_eq!((v[0].weight, v[1].weight), (50.0, 50.0));
        let out = set_weights(TEXT, &changes(&[("challenger", 12.34)])).unwrap();
        let v = read_variants(&out).unwrap();
        assert_eq!((v[0].weight, v[1].weight), (87.66, 12.34));
    }

    #[test]
    fn refuses_bad_edits() {
        assert_eq!(set_weights(TEXT, &changes(&[("nope", 1.0)])), Err(EditError::UnknownVariant("nope".into())));
        assert_eq!(
            set_weights(TEXT, &changes(&[("champion", 1.0)])),
            Err(EditError::ChampionWeight("champion".into()))
        );
        assert!(matches!(set_weights(TEXT, &changes(&[("challenger", 101.0)])), Err(EditError::BadWeight(..))));
        assert!(matches!(set_weights(TEXT, &changes(&[("challenger", 1.234)])), Err(EditError::BadWeight(..))));
        assert!(matches!(set_weights("x = [", &changes(&[])), Err(EditError::Parse(_))));
    }

    #[test]
    fn rollback_and_promote() {
        let v = read_variants(&rollback(TEXT).unwrap()).unwrap();
        assert_eq!((v[0].weight, v[1].weight), (100.0, 0.0));
        let p = promote(TEXT, "challenger").unwrap();
        let v = read_variants(&p).unwrap();
        assert_eq!(v[0].model, "rec-v2-3");
        assert_eq!((v[0].weight, v[1].weight), (100.0, 0.0));
        assert!(p.contains("# keep me"));
        assert!(matches!(promote(TEXT, "champion"), Err(EditError::ChampionWeight(_))));
    }

    #[test]
    fn an_interleaving_arm_cannot_be_promoted_but_ramps_like_any_challenger() {
        let text = TEXT.replace("model = \"rec-v2-3\"", "interleave = [\"rec-v2-2\", \"rec-v2-3\"]");
        assert_eq!(promote(&text, "challenger"), Err(EditError::Interleaving("challenger".into())));
        let v = read_variants(&set_weights(&text, &changes(&[("challenger", 30.0)])).unwrap()).unwrap();
        assert_eq!((v[0].weight, v[1].weight), (70.0, 30.0));
        assert!(set_weights(&text, &changes(&[("challenger", 30.0)])).unwrap().contains("interleave = ["));
        let v = read_variants(&rollback(&text).unwrap()).unwrap();
        assert_eq!((v[0].weight, v[1].weight), (100.0, 0.0));
    }

    #[test]
    fn dry_run_counts_traffic_in_moving_buckets() {
        let before = read_variants(TEXT).unwrap();
        let after = read_variants(&set_weights(TEXT, &changes(&[("challenger", 50.0)])).unwrap()).unwrap();
        let counts = vec![1u64; BUCKETS as usize];
        // Buckets 1000..5000 move from champion to challenger.
        assert_eq!(estimate_moved(&before, &after, &counts), (4_000, 10_000));
        assert_eq!(estimate_moved(&before, &before, &counts), (0, 10_000));
    }
}
