use super::*;

fn epoch(id: &str, since_ms: u64, requests: u64) -> Epoch {
    let mut counts = BTreeMap::new();
    counts.insert("champion".to_string(), Counts { requests, events: vec![1, 0, 2] });
    Epoch {
        id: id.into(),
        since_version: since_ms / 10,
        since_ms,
        last_ms: since_ms + 5,
        champion: "champion".into(),
        weights: [("champion".to_string(), 90.0), ("challenger".to_string(), 10.0)].into_iter().collect(),
        counts,
    }
}

fn user(key: u32, epoch: u16, variant: u16) -> User {
    User { key, exposure: Exposure::At { epoch, variant }, moved: false, kinds: 0, requests: 1 }
}

/// A user with its epoch id and variant name instead of table indices.
type Named = (u32, Option<(String, String)>, bool, u8, u32, bool);

/// Epochs sorted by id and users pointing at names, so differently ordered tables compare.
fn canonical(c: &Cohorts) -> (u64, Vec<Epoch>, Vec<Named>) {
    let mut epochs = c.epochs.clone();
    epochs.sort_by(|a, b| a.id.cmp(&b.id));
    let users = c
        .users
        .iter()
        .map(|u| {
            let at = match u.exposure {
                Exposure::At { epoch, variant } => {
                    Some((c.epochs[usize::from(epoch)].id.clone(), c.variants[usize::from(variant)].clone()))
                }
                _ => None,
            };
            (u.key, at, u.moved, u.kinds, u.requests, u.exposure == Exposure::Dropped)
        })
        .collect();
    (c.threshold, epochs, users)
}

fn replica_a() -> Cohorts {
    Cohorts {
        threshold: ALL,
        epochs: vec![epoch("e1", 1_000, 10), epoch("e2", 2_000, 20)],
        variants: vec!["champion".into(), "challenger".into()],
        users: vec![user(5, 0, 0), user(9, 1, 1), User { kinds: 0b101, ..user(70, 0, 1) }],
    }
}

fn replica_b() -> Cohorts {
    Cohorts {
        threshold: ALL / 2,
        // The same epoch e2, seen earlier here, and a third one; names in another order.
        epochs: vec![epoch("e3", 3_000, 1), epoch("e2", 1_500, 5)],
        variants: vec!["challenger".into(), "champion".into()],
        users: vec![
            // User 9: exposed here in e2 too, but as champion → moved; a purchase.
            User { kinds: 0b1000, requests: 4, ..user(9, 1, 1) },
            // User 70: feedback only here.
            User { key: 70, exposure: Exposure::None, moved: false, kinds: 0b10, requests: 0 },
            user(u32::MAX, 0, 0),
        ],
    }
}

#[test]
fn merge_unites_epochs_and_users_exactly() {
    let mut m = replica_a();
    m.merge(&replica_b());
    assert_eq!(m.threshold, ALL / 2);
    let e2 = m.epochs.iter().find(|e| e.id == "e2").unwrap();
    assert_eq!((e2.since_ms, e2.since_version, e2.last_ms), (1_500, 150, 2_005));
    assert_eq!(e2.counts["champion"], Counts { requests: 25, events: vec![2, 0, 4] });
    assert_eq!(m.epochs.len(), 3);
    // User u32::MAX is above the merged threshold: out of the sample.
    assert_eq!(m.users.iter().map(|u| u.key).collect::<Vec<_>>(), [5, 9, 70]);
    let u9 = m.users[1];
    assert_eq!((u9.moved, u9.kinds, u9.requests), (true, 0b1000, 5));
    // Its first exposure is the one in the epoch first seen: e2 either way here.
    let u70 = m.users[2];
    assert_eq!((u70.kinds, u70.requests, u70.moved), (0b111, 1, false));
    assert!(matches!(u70.exposure, Exposure::At { .. }));
}

#[test]
fn merge_is_commutative_and_associative() {
    let c = Cohorts {
        threshold: ALL,
        epochs: vec![epoch("e1", 900, 3)],
        variants: vec!["challenger".into()],
        users: vec![User { kinds: 1, ..user(9, 0, 0) }, user(12, 0, 0)],
    };
    let (a, b) = (replica_a(), replica_b());
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(canonical(&ab), canonical(&ba));
    let mut ab_c = ab.clone();
    ab_c.merge(&c);
    let mut bc = b.clone();
    bc.merge(&c);
    let mut a_bc = a.clone();
    a_bc.merge(&bc);
    assert_eq!(canonical(&ab_c), canonical(&a_bc));
    // User 9 was first exposed in e1 on replica c (e1 is the earliest epoch): as challenger.
    let u9 = a_bc.users.iter().find(|u| u.key == 9).unwrap();
    let Exposure::At { epoch, variant } = u9.exposure else { panic!("{u9:?}") };
    assert_eq!(
        (a_bc.epochs[usize::from(epoch)].id.as_str(), a_bc.variants[usize::from(variant)].as_str()),
        ("e1", "challenger")
    );
    // Merging the empty value changes nothing.
    let mut same = a.clone();
    same.merge(&Cohorts::default());
    assert_eq!(same, a);
}

#[test]
fn epochs_are_bounded_by_recency_and_their_users_kept_out_of_strata() {
    let mut c = Cohorts::default();
    c.variants.push("champion".into());
    for i in 0..(MAX_EPOCHS as u64 + 2) {
        c.epochs.push(epoch(&format!("e{i:02}"), 1_000 + i, 1));
    }
    c.users = vec![user(1, 0, 0), user(2, 1, 0), user(3, 17, 0)];
    c.merge(&Cohorts::default());
    assert_eq!(c.epochs.len(), MAX_EPOCHS);
    assert!(c.epochs.iter().all(|e| e.id != "e00" && e.id != "e01"));
    assert_eq!(c.users[0].exposure, Exposure::Dropped);
    assert_eq!(c.users[1].exposure, Exposure::Dropped);
    let Exposure::At { epoch, .. } = c.users[2].exposure else { panic!() };
    assert_eq!(c.epochs[usize::from(epoch)].id, "e17");
}

#[test]
fn serde_round_trip_and_refusals() {
    let mut c = replica_a();
    c.users.push(User { key: 1 << 31, exposure: Exposure::Dropped, moved: true, kinds: 0x7f, requests: 70_000 });
    c.users.push(User { key: u32::MAX, exposure: Exposure::None, moved: false, kinds: 2, requests: 0 });
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<Cohorts>(&text).unwrap(), c);
    let empty = serde_json::to_string(&Cohorts::default()).unwrap();
    assert_eq!(serde_json::from_str::<Cohorts>(&empty).unwrap(), Cohorts::default());
    assert_eq!(serde_json::from_str::<Cohorts>(r#"{"threshold":4294967296}"#).unwrap(), Cohorts::default());
    for bad in [
        r#"{"threshold":4294967297}"#,
        r#"{"threshold":1,"users":"!!"}"#,
        r#"{"threshold":1,"users":"A"}"#,
        // Key 5 twice (delta 0), and a user in epoch 0 of an item without epochs.
        r#"{"threshold":1,"users":"BQAAAQAAAAE"}"#,
        r#"{"threshold":1,"users":"BQIAAQ"}"#,
    ] {
        assert!(serde_json::from_str::<Cohorts>(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_full_sample_is_about_eight_characters_a_user() {
    let users: Vec<User> = (0..8_192u32)
        .map(|i| User {
            key: i.wrapping_mul(524_309),
            exposure: Exposure::At { epoch: (i % 16) as u16, variant: (i % 8) as u16 },
            moved: i % 50 == 0,
            kinds: (i % 3) as u8,
            requests: 1 + i % 5,
        })
        .collect();
    let mut users = users;
    users.sort_by_key(|u| u.key);
    let text = encode_users(&users, 8);
    // Worst case: keys 2^19 apart (3 bytes), 128 epoch×variant codes (2 bytes), flags, requests.
    assert!(text.len() < 8_192 * 17 / 2, "{} chars", text.len());
    assert_eq!(decode_users(&text, 8, 16).unwrap(), users);
}

/// The fleet item budget: a replica's whole `Tallies` for 8 variants, each with a full users
/// sketch, 16 epochs of counts and a full default sample stays within 100 KB of JSON.
#[test]
fn a_worst_case_replica_fits_the_fleet_item_budget() {
    use crate::experiment::sampler::DEFAULT_CAPACITY;
    use crate::tally::{Tallies, VariantTally};
    let names: Vec<String> = (0..8).map(|i| format!("variant-{i}")).collect();
    let mut t = Tallies::default();
    for name in &names {
        let mut v = VariantTally::default();
        for i in 0..50_000u64 {
            v.experiment.users.add(crate::split::stable_hash(name, &i.to_be_bytes()));
        }
        v.experiment.events = vec![123_456_789; 7];
        t.variants.insert(name.clone(), v);
    }
    let counts: BTreeMap<String, Counts> =
        names.iter().map(|n| (n.clone(), Counts { requests: 987_654_321, events: vec![123_456_789; 7] })).collect();
    let weights: BTreeMap<String, f64> = names.iter().map(|n| (n.clone(), 12.5)).collect();
    for e in 0..MAX_EPOCHS as u64 {
        t.cohorts.epochs.push(Epoch {
            id: format!("{:016x}", e.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            since_version: 1_000 + e,
            since_ms: 1_800_000_000_000 + e,
            last_ms: 1_800_000_900_000 + e,
            champion: names[0].clone(),
            weights: weights.clone(),
            counts: counts.clone(),
        });
    }
    t.cohorts.variants = names.clone();
    t.cohorts.threshold = ALL / 40;
    let step = (ALL / 40) as u32 / DEFAULT_CAPACITY as u32;
    t.cohorts.users = (0..DEFAULT_CAPACITY as u32)
        .map(|i| User {
            key: i * step,
            exposure: Exposure::At { epoch: (i % 16) as u16, variant: (i % 8) as u16 },
            moved: i % 7 == 0,
            kinds: (i % 5) as u8,
            requests: 3 + i % 200,
        })
        .collect();
    let text = serde_json::to_string(&t).unwrap();
    eprintln!("worst-case replica tallies: {} bytes of JSON", text.len());
    assert!(text.len() < 100_000, "{} bytes", text.len());
    assert_eq!(serde_json::from_str::<Tallies>(&text).unwrap(), t);
}
