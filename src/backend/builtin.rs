//! The builtin demo recommender: deterministic answers computed in-process.
//!
//! It gives the default config real, model-shaped answers with no cloud account, and load tests a
//! zero-cost target. Every model version ranks the same user-derived candidates with its own noise,
//! so two builtin models agree partly — which makes shadow comparison show realistic overlap.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::ModelResponse;

const CANDIDATES: usize = 24;
const RESULTS: usize = 10;
const CATALOGUE: u64 = 5_000;

/// A builtin model, seeded by its version string.
#[derive(Debug, Clone)]
pub struct Builtin {
    version: String,
    seed: u64,
}

impl Builtin {
    pub fn new(version: &str) -> Builtin {
        Builtin { version: version.to_owned(), seed: fnv1a(version.as_bytes()) }
    }

    /// `{"user_id":…,"model":…,"items":[{"item_id":"item-N","score":0.xxxx},…]}`, top 10 by score.
    pub fn answer(&self, user_id: &str) -> ModelResponse {
        let mut state = fnv1a(user_id.as_bytes());
        let mut ranked = [(0u64, 0f64); CANDIDATES];
        for (rank, slot) in ranked.iter_mut().enumerate() {
            let item = splitmix(&mut state) % CATALOGUE;
            let prior = 1.0 - rank as f64 / CANDIDATES as f64;
            let mut noise_state = self.seed ^ item.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let noise = (splitmix(&mut noise_state) >> 11) as f64 / (1u64 << 53) as f64;
            *slot = (item, 0.65 * prior + 0.35 * noise);
        }
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));

        let mut body = Vec::with_capacity(96 + user_id.len() + RESULTS * 40);
        body.extend_from_slice(b"{\"user_id\":");
        // Writing JSON into a Vec cannot fail; the id is escaped properly by serde_json.
        let _ = serde_json::to_writer(&mut body, user_id);
        body.extend_from_slice(b",\"model\":");
        let _ = serde_json::to_writer(&mut body, &self.version);
        body.extend_from_slice(b",\"items\":[");
        let mut seen = [u64::MAX; RESULTS];
        let mut n = 0;
        for (item, score) in ranked {
            if n == RESULTS {
                break;
            }
            if seen[..n].contains(&item) {
                continue;
            }
            seen[n] = item;
            if n > 0 {
                body.push(b',');
            }
            // Integer formatting: `{:.4}` on f64 takes the slow exact path and was a fifth of the
            // whole request's CPU in the profile.
            let milli = (score.clamp(0.0, 1.0) * 10_000.0).round() as u32;
            let mut digits = itoa::Buffer::new();
            body.extend_from_slice(b"{\"item_id\":\"item-");
            body.extend_from_slice(digits.format(item).as_bytes());
            body.extend_from_slice(b"\",\"score\":");
            body.extend_from_slice(digits.format(milli / 10_000).as_bytes());
            body.push(b'.');
            let frac = milli % 10_000;
            let frac_digits = digits.format(frac).as_bytes();
            body.extend(std::iter::repeat_n(b'0', 4 - frac_digits.len()));
            body.extend_from_slice(frac_digits);
            body.push(b'}');
            n += 1;
        }
        body.extend_from_slice(b"]}");
        ModelResponse {
            status: StatusCode::OK,
            content_type: Some(HeaderValue::from_static("application/json")),
            body: Bytes::from(body),
        }
    }
}

/// FNV-1a, 64-bit: a seed derivation, not the split hash (that one is `split::stable_hash`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(b: &Builtin, user: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&b.answer(user).body).unwrap();
        v["items"].as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn answers_are_valid_json_and_deterministic() {
        let b = Builtin::new("v2.2.0");
        let r = b.answer("user \"42\"\n");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["user_id"], "user \"42\"\n");
        assert_eq!(v["model"], "v2.2.0");
        let list = v["items"].as_array().unwrap();
        assert_eq!(list.len(), RESULTS);
        let scores: Vec<f64> = list.iter().map(|i| i["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert_eq!(b.answer("u1").body, b.answer("u1").body);
        assert_ne!(items(&b, "u1"), items(&b, "u2"));
    }

    #[test]
    fn versions_overlap_partly() {
        let (a, b) = (Builtin::new("v2.2.0"), Builtin::new("v2.3.0"));
        let mut total = 0;
        for u in 0..200 {
            let (x, y) = (items(&a, &format!("u{u}")), items(&b, &format!("u{u}")));
            total += x.iter().filter(|i| y.contains(i)).count();
        }
        let mean = total as f64 / 200.0;
        assert!((3.0..9.5).contains(&mean), "mean overlap {mean}");
    }
}
