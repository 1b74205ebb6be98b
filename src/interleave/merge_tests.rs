//! Hand-computed merges (each case's rounds are worked out in its comment), the seed and coin
//! vectors, and a naive reference implementation the merge must agree with on random lists.

use super::*;

const ALL_A: u64 = u64::MAX; // every coin 1: A picks first at every tie
const ALL_B: u64 = 0; // every coin 0: B picks first at every tie

fn ids<'a>(a: &[&'a str], b: &[&'a str], picks: &[Pick]) -> Vec<&'a str> {
    picks.iter().map(|p| *item(a, b, *p)).collect()
}

fn teams(picks: &[Pick]) -> String {
    picks.iter().map(|p| p.team.letter() as char).collect()
}

#[test]
fn identical_lists_keep_their_order_and_split_the_teams_by_coin() {
    let l = ["1", "2", "3", "4"];
    // Tie, coin 0 → B takes 1; A (smaller) takes 2 (its 1 is gone); tie, coin 0 → B takes 3; A takes 4.
    let p = team_draft(&l, &l, 4, ALL_B);
    assert_eq!(ids(&l, &l, &p), ["1", "2", "3", "4"]);
    assert_eq!(teams(&p), "BABA");
    assert_eq!(
        p,
        [
            Pick { team: Team::B, index: 0 },
            Pick { team: Team::A, index: 1 },
            Pick { team: Team::B, index: 2 },
            Pick { team: Team::A, index: 3 }
        ]
    );
    assert_eq!(teams(&team_draft(&l, &l, 4, ALL_A)), "ABAB");
    // Coins 0 then 1: B, A, then A first, B.
    assert_eq!(teams(&team_draft(&l, &l, 4, 0b10)), "BAAB");
    assert_eq!(ids(&l, &l, &team_draft(&l, &l, 4, 0b10)), ["1", "2", "3", "4"]);
}

#[test]
fn disjoint_lists_alternate_in_pairs() {
    let (a, b) = (["a1", "a2", "a3"], ["b1", "b2", "b3"]);
    // Coins 1, 0, 0: A first, then B first twice.
    let p = team_draft(&a, &b, 6, 0b001);
    assert_eq!(ids(&a, &b, &p), ["a1", "b1", "b2", "a2", "b3", "a3"]);
    assert_eq!(teams(&p), "ABBABA");
    // k truncates.
    assert_eq!(ids(&a, &b, &team_draft(&a, &b, 4, 0b001)), ["a1", "b1", "b2", "a2"]);
    assert!(team_draft(&a, &b, 0, 0b001).is_empty());
}

#[test]
fn overlap_is_shown_once_and_credited_to_who_picked_it() {
    let (a, b) = (["x", "a1", "y", "a2"], ["y", "x", "b1", "b2"]);
    // Tie, coin 0 → B takes y; A takes x; tie (1-1), coin 0 → B's x is gone: B takes b1; A takes a1.
    let p = team_draft(&a, &b, 4, ALL_B);
    assert_eq!(ids(&a, &b, &p), ["y", "x", "b1", "a1"]);
    assert_eq!(teams(&p), "BABA");
    assert_eq!(p[2], Pick { team: Team::B, index: 2 });
    // A first: A takes x; B takes y; tie, coin 1 → A takes a1; B takes b1 (its x is gone).
    let p = team_draft(&a, &b, 4, ALL_A);
    assert_eq!(ids(&a, &b, &p), ["x", "y", "a1", "b1"]);
    assert_eq!(teams(&p), "ABAB");
    // The whole union, no id twice.
    let p = team_draft(&a, &b, 10, ALL_A);
    assert_eq!(ids(&a, &b, &p), ["x", "y", "a1", "b1", "a2", "b2"]);
    assert_eq!(teams(&p), "ABABAB");
}

#[test]
fn a_shorter_list_leaves_the_rest_of_the_page_to_the_other() {
    let (a, b) = (["a1"], ["b1", "b2", "b3"]);
    // A takes a1, B takes b1, then A has nothing left: B fills b2, b3.
    let p = team_draft(&a, &b, 4, ALL_A);
    assert_eq!(ids(&a, &b, &p), ["a1", "b1", "b2", "b3"]);
    assert_eq!(teams(&p), "ABBB");
    let none: [&str; 0] = [];
    assert_eq!(teams(&team_draft(&none, &b, 4, ALL_A)), "BBB");
    assert!(team_draft(&none, &none, 4, ALL_A).is_empty());
    // B's only item is A's first: B takes it, A takes a2, then both are used up before k.
    let (a, b) = (["a1", "a2"], ["a1"]);
    let p = team_draft(&a, &b, 4, ALL_B);
    assert_eq!(ids(&a, &b, &p), ["a1", "a2"]);
    assert_eq!(teams(&p), "BA");
}

#[test]
fn duplicates_within_one_list_are_skipped() {
    let (a, b) = (["x", "x", "y"], ["z", "z", "w"]);
    // A takes x; B takes z; tie, coin 1 → A skips its second x and takes y; B skips z, takes w.
    let p = team_draft(&a, &b, 4, ALL_A);
    assert_eq!(ids(&a, &b, &p), ["x", "z", "y", "w"]);
    assert_eq!(p.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 0, 2, 2]);
    // A list that is one item repeated gives one position.
    let (a, b) = (["q", "q", "q"], ["q"]);
    assert_eq!(ids(&a, &b, &team_draft(&a, &b, 3, ALL_A)), ["q"]);
}

#[test]
fn seed_and_coin_vectors() {
    // python3: int.from_bytes(hashlib.sha256(b"rec-2026-11\0u123\0req-1").digest()[:8], "big")
    assert_eq!(seed("rec-2026-11", b"u123", b"req-1"), 0x6529_9454_b73b_f6f4);
    assert_ne!(seed("rec-2026-11", b"u12", b"3\0req-1"), seed("rec-2026-11", b"u123", b"req-1"));
    // The reference splitmix64 outputs for states 0 and 1.
    assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    assert_eq!(splitmix64(1), 0x910a_2dec_8902_5cc1);
    let mut c = Coins { word: 0b1011, used: 0 };
    let first: Vec<bool> = (0..5).map(|_| c.flip()).collect();
    assert_eq!(first, [true, true, false, true, false]);
    let mut c = Coins { word: 0, used: 0 };
    assert!((0..64).all(|_| !c.flip()), "word 0 is the seed itself");
    let next: Vec<bool> = (0..64).map(|_| c.flip()).collect();
    let want: Vec<bool> = (0..64).map(|i| (0xe220_a839_7b1d_cdafu64 >> i) & 1 == 1).collect();
    assert_eq!(next, want, "word 1 is splitmix64(word 0)");
}

/// The definition, written the naive way: a set of used ids and a pre-drawn list of coins.
fn reference(a: &[u32], b: &[u32], k: usize, seed: u64) -> Vec<(Team, u32)> {
    let mut coins = Vec::new();
    let mut word = seed;
    for w in 0..8 {
        if w > 0 {
            word = splitmix64(word);
        }
        coins.extend((0..64).map(|i| (word >> i) & 1 == 1));
    }
    let mut coins = coins.into_iter();
    let mut used = std::collections::HashSet::new();
    let (mut na, mut nb) = (0, 0);
    let mut out = Vec::new();
    while out.len() < k {
        let fa = a.iter().find(|x| !used.contains(*x)).copied();
        let fb = b.iter().find(|x| !used.contains(*x)).copied();
        let team = match (fa, fb) {
            (None, None) => break,
            (Some(_), None) => Team::A,
            (None, Some(_)) => Team::B,
            _ if na < nb => Team::A,
            _ if nb < na => Team::B,
            _ => {
                if coins.next().unwrap() {
                    Team::A
                } else {
                    Team::B
                }
            }
        };
        let id = if team == Team::A { fa.unwrap() } else { fb.unwrap() };
        used.insert(id);
        if team == Team::A {
            na += 1
        } else {
            nb += 1
        }
        out.push((team, id));
    }
    out
}

#[test]
fn agrees_with_the_naive_definition_on_random_lists() {
    let mut state = 42u64;
    let mut next = || {
        state = splitmix64(state);
        state
    };
    for round in 0..2_000 {
        let len_a = (next() % 30) as usize;
        let len_b = (next() % 30) as usize;
        // A small id space forces overlap and in-list duplicates.
        let space = 1 + next() % 40;
        let a: Vec<u32> = (0..len_a).map(|_| (next() % space) as u32).collect();
        let b: Vec<u32> = (0..len_b).map(|_| (next() % space) as u32).collect();
        let k = (next() % 30) as usize;
        let s = next();
        let picks = team_draft(&a, &b, k, s);
        let got: Vec<(Team, u32)> = picks.iter().map(|p| (p.team, *item(&a, &b, *p))).collect();
        assert_eq!(got, reference(&a, &b, k, s), "round {round}: a={a:?} b={b:?} k={k}");
        // Team sizes stay within one of each other while both lists have items to give.
        let mut sizes = [0i64; 2];
        for p in &picks {
            sizes[p.team.index()] += 1;
        }
        let distinct = |l: &[u32]| l.iter().collect::<std::collections::HashSet<_>>().len();
        if distinct(&a) >= k && distinct(&b) >= k {
            assert!((sizes[0] - sizes[1]).abs() <= 1, "round {round}: sizes {sizes:?}");
        }
    }
}

#[test]
fn long_pages_draw_coins_past_the_first_word() {
    let a: Vec<u32> = (0..300).collect();
    let b: Vec<u32> = (1_000..1_300).collect();
    let picks = team_draft(&a, &b, 600, 7);
    let got: Vec<(Team, u32)> = picks.iter().map(|p| (p.team, *item(&a, &b, *p))).collect();
    assert_eq!(got, reference(&a, &b, 600, 7));
}

#[test]
fn verdicts_and_masks() {
    let picks = [Pick { team: Team::A, index: 0 }, Pick { team: Team::B, index: 0 }, Pick { team: Team::B, index: 1 }];
    assert_eq!(b_mask(&picks), 0b110);
    assert_eq!(verdict(0, 0b110), Verdict::NoClicks);
    assert_eq!(verdict(0b001, 0b110), Verdict::AWins);
    assert_eq!(verdict(0b010, 0b110), Verdict::BWins);
    assert_eq!(verdict(0b011, 0b110), Verdict::Tie);
    assert_eq!(verdict(0b111, 0b110), Verdict::BWins);
    assert_eq!(Team::A.other(), Team::B);
    assert_eq!((Team::A.as_str(), Team::B.letter()), ("a", b'B'));
}
