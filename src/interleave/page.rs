//! One interleaved page from two parsed answers: the merge, the merged body, B's positions and
//! the team code — everything the request path computes per interleaved answer. Pure.

use super::answer::{self, Ranked};
use super::code::{self, MAX_POSITIONS};
use super::merge::{self, Pick, Team};

/// Who the code is for: the config's salt, the arm's name, the id the models were called with.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    pub salt: &'a str,
    pub variant: &'a str,
    pub request_id: &'a [u8],
}

/// A merged page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// A's answer with its list replaced by the merged items.
    pub body: Vec<u8>,
    pub picks: Vec<Pick>,
    /// Bit `i`: position `i` is B's.
    pub b_mask: u64,
    /// The team code (`interleave::code`).
    pub code: String,
}

/// Merges `a` and `b` (each an answer and its list) into at most `k` positions with the coins of
/// `seed`; A's answer is the template.
pub fn merge(a: (&[u8], &Ranked), b: (&[u8], &Ranked), k: usize, seed: u64, tag: Tag<'_>) -> Page {
    let ((a_body, ra), (b_body, rb)) = (a, b);
    let (ids_a, ids_b) = (ra.ids(a_body), rb.ids(b_body));
    let picks = merge::team_draft(&ids_a, &ids_b, k, seed);
    let raw = |p: &Pick| -> &[u8] {
        match p.team {
            Team::A => &a_body[ra.items[p.index].raw.clone()],
            Team::B => &b_body[rb.items[p.index].raw.clone()],
        }
    };
    let body = answer::render(a_body, ra.list.clone(), picks.iter().map(raw));
    let mut fps = [0u16; MAX_POSITIONS];
    let n = picks.len().min(MAX_POSITIONS);
    let page = code::Fingerprints::of_page(tag.request_id);
    for (fp, p) in fps.iter_mut().zip(&picks) {
        *fp = page.of(merge::item::<&str>(&ids_a, &ids_b, *p));
    }
    let b_mask = merge::b_mask(&picks);
    let code = code::encode(tag.salt, tag.variant, tag.request_id, b_mask, &fps[..n]);
    Page { body, picks, b_mask, code }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interleave::code::{decode, fingerprint, Located};

    #[test]
    fn a_page_and_its_code_agree() {
        let a = br#"{"model":"a","items":[{"item_id":"x","s":1},{"item_id":"a1","s":2},{"item_id":"a2","s":3}]}"#;
        let b = br#"{"items":[{"item_id":"b1"},{"item_id":"x"},{"item_id":"b2"}],"model":"b"}"#;
        let (ra, rb) =
            (answer::ranked(a, "/items", "item_id", 10).unwrap(), answer::ranked(b, "/items", "item_id", 10).unwrap());
        let tag = Tag { salt: "s", variant: "arm", request_id: b"req" };
        // Coins all 1: A takes x; B takes b1 (its x is gone… b1 is first); tie → A takes a1; B takes b2; A takes a2.
        let page = merge((a, &ra), (b, &rb), 4, u64::MAX, tag);
        assert_eq!(
            std::str::from_utf8(&page.body).unwrap(),
            r#"{"model":"a","items":[{"item_id":"x","s":1},{"item_id":"b1"},{"item_id":"a1","s":2},{"item_id":"b2"}]}"#
        );
        assert_eq!(page.b_mask, 0b1010);
        let c = decode("s", "arm", b"req", &page.code).unwrap();
        assert_eq!((c.n, c.b_mask), (4, 0b1010));
        assert_eq!(c.locate(fingerprint(b"req", "b2")), Located::At { position: 3, team: Team::B });
        assert_eq!(c.locate(fingerprint(b"req", "x")), Located::At { position: 0, team: Team::A });
        assert_eq!(c.locate(fingerprint(b"req", "a2")), Located::NotShown, "a2 was cut by k");
    }
}
