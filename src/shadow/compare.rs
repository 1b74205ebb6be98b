//! Comparing a shadow's recommendation list with the primary's. Pure, no I/O.
//!
//! * overlap@k — `|A∩B| / k` over the top-k of each list. When both lists are shorter than k the
//!   denominator is the longer list's length, so two identical 5-item lists score 1, not 0.5.
//! * rank-biased overlap — RBO_ext (Webber, Moffat & Zobel 2010, eq. 32) with persistence p = 0.9,
//!   truncated at depth k: agreement at the top weighs more than agreement at the bottom; 1 for
//!   identical lists, 0 for disjoint ones.
//! * top-1 — whether the first items match.

/// RBO persistence: the top 10 ranks carry ~65% of the weight.
pub const RBO_P: f64 = 0.9;

/// The result of comparing two lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub overlap_at_k: f64,
    pub rbo: f64,
    pub top1_match: bool,
}

/// Why an answer's list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("answer is not JSON")]
    NotJson,
    #[error("no array at `{0}`")]
    NoList(String),
}

pub use super::extract::extract_ids;

/// Compares the top-`k` of `a` (primary) and `b` (shadow).
pub fn compare<S: AsRef<str>>(a: &[S], b: &[S], k: usize) -> Comparison {
    let a = &a[..a.len().min(k)];
    let b = &b[..b.len().min(k)];
    let depth = a.len().max(b.len());
    if depth == 0 {
        return Comparison { overlap_at_k: 1.0, rbo: 1.0, top1_match: true };
    }
    let denom = k.min(depth) as f64;
    // Running intersection size of the two prefixes as sets: each id counts once, when the
    // second of its two lists first reaches it.
    let (mut seen_a, mut seen_b) = (Seen::for_depth(depth), Seen::for_depth(depth));
    let mut overlap = 0usize;
    let mut sum = 0.0;
    let mut weight = 1.0;
    for d in 1..=depth {
        if let Some(x) = a.get(d - 1) {
            if seen_a.insert(x.as_ref()) && seen_b.contains(x.as_ref()) {
                overlap += 1;
            }
        }
        if let Some(y) = b.get(d - 1) {
            if seen_b.insert(y.as_ref()) && seen_a.contains(y.as_ref()) {
                overlap += 1;
            }
        }
        weight *= RBO_P;
        sum += overlap as f64 / d as f64 * weight;
    }
    let rbo = (overlap as f64 / depth as f64) * RBO_P.powi(depth as i32) + (1.0 - RBO_P) / RBO_P * sum;
    Comparison {
        overlap_at_k: overlap as f64 / denom,
        rbo: rbo.clamp(0.0, 1.0),
        top1_match: !a.is_empty() && a.first().map(AsRef::as_ref) == b.first().map(AsRef::as_ref),
    }
}

/// Up to this depth a set is a linear scan over an array: for the usual k of 10–20 that beats
/// hashing, and allocates nothing.
const SMALL: usize = 32;

/// The ids one list has shown so far.
// Lives on the stack for one comparison; the inline array is the point.
#[allow(clippy::large_enum_variant)]
enum Seen<'a> {
    Small([&'a str; SMALL], usize),
    Big(std::collections::HashSet<&'a str>),
}

impl<'a> Seen<'a> {
    fn for_depth(depth: usize) -> Seen<'a> {
        if depth <= SMALL {
            Seen::Small([""; SMALL], 0)
        } else {
            Seen::Big(std::collections::HashSet::with_capacity(depth))
        }
    }

    /// Adds `id`; false if it was already there.
    fn insert(&mut self, id: &'a str) -> bool {
        if self.contains(id) {
            return false;
        }
        match self {
            Seen::Small(ids, n) => {
                // `for_depth` sized it: at most `depth` <= SMALL distinct ids arrive.
                if let Some(slot) = ids.get_mut(*n) {
                    *slot = id;
                    *n += 1;
                }
            }
            Seen::Big(set) => {
                set.insert(id);
            }
        }
        true
    }

    fn contains(&self, id: &str) -> bool {
        match self {
            Seen::Small(ids, n) => ids[..*n].contains(&id),
            Seen::Big(set) => set.contains(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() < 1e-9
    }

    #[test]
    fn identical_lists() {
        let a = ids("a b c d e f g h i j");
        let c = compare(&a, &a, 10);
        assert!(close(c.overlap_at_k, 1.0) && close(c.rbo, 1.0) && c.top1_match, "{c:?}");
    }

    #[test]
    fn disjoint_lists() {
        let c = compare(&ids("a b c d"), &ids("w x y z"), 4);
        assert!(close(c.overlap_at_k, 0.0) && close(c.rbo, 0.0) && !c.top1_match, "{c:?}");
    }

    #[test]
    fn partial_overlap_hand_computed() {
        // Top-4: {a,b,c,d} vs {a,x,c,y} share a and c → overlap@4 = 0.5.
        let c = compare(&ids("a b c d"), &ids("a x c y"), 4);
        assert!(close(c.overlap_at_k, 0.5));
        assert!(c.top1_match);
        // X_1..X_4 = 1,1,2,2. RBO_ext = (2/4)·p⁴ + (1-p)/p · Σ (X_d/d)·p^d.
        let p: f64 = 0.9;
        let sum = 1.0 * p + 0.5 * p.powi(2) + (2.0 / 3.0) * p.powi(3) + 0.5 * p.powi(4);
        let want = 0.5 * p.powi(4) + (1.0 - p) / p * sum;
        assert!(close(c.rbo, want), "{} vs {want}", c.rbo);
    }

    #[test]
    fn reordered_lists_have_full_overlap_but_lower_rbo() {
        let c = compare(&ids("a b c d"), &ids("d c b a"), 4);
        assert!(close(c.overlap_at_k, 1.0));
        assert!(!c.top1_match);
        assert!(c.rbo < 1.0 && c.rbo > 0.0, "{c:?}");
        // Swapping the bottom two hurts less than swapping the top two.
        let bottom = compare(&ids("a b c d"), &ids("a b d c"), 4).rbo;
        let top = compare(&ids("a b c d"), &ids("b a c d"), 4).rbo;
        assert!(bottom > top, "{bottom} vs {top}");
    }

    #[test]
    fn k_truncates_and_short_lists_are_fair() {
        let c = compare(&ids("a b c z"), &ids("a b c y"), 3);
        assert!(close(c.overlap_at_k, 1.0) && close(c.rbo, 1.0));
        let c = compare(&ids("a b"), &ids("a b"), 10);
        assert!(close(c.overlap_at_k, 1.0));
        let c = compare(&ids("a b"), &ids(""), 10);
        assert!(close(c.overlap_at_k, 0.0) && !c.top1_match);
        let c = compare::<String>(&[], &[], 10);
        assert!(close(c.overlap_at_k, 1.0));
    }

    #[test]
    fn duplicates_in_either_list_keep_shared_ids_and_symmetry() {
        // Found by the fuzzer: a repeated primary id used to hide the shared one.
        let c = compare(&ids("b b"), &ids("a b c"), 3);
        assert!(close(c.overlap_at_k, 1.0 / 3.0), "{c:?}");
        let (pq, qq) = (ids("p q"), ids("q q"));
        assert_eq!(compare(&pq, &qq, 2).overlap_at_k, compare(&qq, &pq, 2).overlap_at_k);
    }

    #[test]
    fn duplicates_count_once() {
        let c = compare(&ids("a a b"), &ids("a b c"), 3);
        assert!(close(c.overlap_at_k, 2.0 / 3.0), "{c:?}");
    }

    #[test]
    fn extraction() {
        let body = br#"{"items":[{"item_id":"x","score":1},{"item_id":7},{"other":1},"bare",3]}"#;
        assert_eq!(extract_ids(body, "/items", "item_id", 10).unwrap(), ids("x 7 bare 3"));
        assert_eq!(extract_ids(body, "/items", "item_id", 2).unwrap(), ids("x 7"));
        assert_eq!(extract_ids(b"[\"a\",\"b\"]", "", "id", 5).unwrap(), ids("a b"));
        assert_eq!(extract_ids(b"{\"r\":{\"l\":[{\"id\":\"q\"}]}}", "/r/l", "id", 5).unwrap(), ids("q"));
        assert_eq!(extract_ids(b"nope", "/items", "item_id", 10), Err(ExtractError::NotJson));
        assert_eq!(extract_ids(b"{\"items\":3}", "/items", "item_id", 10), Err(ExtractError::NoList("/items".into())));
    }
}
