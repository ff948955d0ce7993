//! Model-based tests: both stores against a plain `BTreeMap`, under random commits.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::Error;

#[derive(Debug, Clone)]
enum Step {
    Commit(Vec<Op>),
    StaleCommit(Vec<Op>),
    ChangesSince(u64),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[ab]/[0-3]", Just("a".to_owned()), Just("b/".to_owned())]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key(), proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(key, value)| Op::Put { key, value }),
        key().prop_map(|key| Op::Delete { key }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => proptest::collection::vec(op(), 0..4).prop_map(Step::Commit),
        1 => proptest::collection::vec(op(), 1..3).prop_map(Step::StaleCommit),
        1 => (0u64..20).prop_map(Step::ChangesSince),
    ]
}

type Model = BTreeMap<String, (u64, Vec<u8>)>;

fn apply(model: &mut Model, rev: u64, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put { key, value } => {
                model.insert(key.clone(), (rev, value.clone()));
            }
            Op::Delete { key } => {
                model.remove(key);
            }
        }
    }
}

fn check(store: &dyn Store, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut model = Model::new();
    // history[r] = the model after revision r
    let mut history = vec![model.clone()];
    for s in steps {
        let rev = store.revision().unwrap();
        prop_assert_eq!(rev as usize, history.len() - 1);
        match s {
            Step::Commit(ops) => {
                let new = store.commit(rev, &ops).unwrap();
                prop_assert_eq!(new, rev + 1);
                apply(&mut model, new, &ops);
                history.push(model.clone());
            }
            Step::StaleCommit(ops) => {
                let err = store.commit(rev + 1, &ops).unwrap_err();
                prop_assert_eq!(
                    err,
                    Error::StoreConflict {
                        expected: rev + 1,
                        current: rev
                    }
                );
            }
            Step::ChangesSince(after) => {
                let after = after.min(rev);
                let mut replay = history[after as usize].clone();
                for e in store.changes_since(after).unwrap() {
                    prop_assert!(e.revision > after);
                    match e.value {
                        Some(v) => replay.insert(e.key, (e.revision, v)),
                        None => replay.remove(&e.key),
                    };
                }
                prop_assert_eq!(&replay, &model);
            }
        }
        let (rev, all) = store.range("").unwrap();
        prop_assert_eq!(rev as usize, history.len() - 1);
        let got: Model = all
            .into_iter()
            .map(|kv| (kv.key, (kv.mod_revision, kv.value)))
            .collect();
        prop_assert_eq!(&got, &model);
        let (_, a) = store.range("a/").unwrap();
        prop_assert!(a.iter().all(|kv| kv.key.starts_with("a/")));
        prop_assert_eq!(
            a.len(),
            model.keys().filter(|k| k.starts_with("a/")).count()
        );
        for k in ["a", "b/", "a/1"] {
            let got = store.get(k).unwrap().map(|kv| (kv.mod_revision, kv.value));
            prop_assert_eq!(got.as_ref(), model.get(k));
        }
        prop_assert_eq!(*store.subscribe().borrow(), history.len() as u64 - 1);
    }
    Ok(())
}

proptest! {
    #[test]
    fn mem_store_matches_btreemap(steps in proptest::collection::vec(step(), 0..40)) {
        check(&MemStore::new(), steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn redb_store_matches_btreemap(steps in proptest::collection::vec(step(), 0..25)) {
        let dir = tempfile::tempdir().unwrap();
        check(&RedbStore::open(dir.path()).unwrap(), steps)?;
    }
}

#[test]
fn redb_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RedbStore::open(dir.path()).unwrap();
        s.commit(
            0,
            &[Op::Put {
                key: "k".into(),
                value: b"v".to_vec(),
            }],
        )
        .unwrap();
    }
    let s = RedbStore::open(dir.path()).unwrap();
    assert_eq!(s.revision().unwrap(), 1);
    assert_eq!(s.get("k").unwrap().unwrap().value, b"v");
    assert_eq!(*s.subscribe().borrow(), 1);
}

#[test]
fn history_is_compacted() {
    let s = MemStore::new();
    for r in 0..HISTORY + 5 {
        s.commit(r, &[Op::Delete { key: "x".into() }]).unwrap();
    }
    assert!(matches!(
        s.changes_since(2),
        Err(Error::Compacted { oldest: 5, .. })
    ));
    assert_eq!(s.changes_since(5).unwrap().len(), HISTORY as usize);
}

/// A store file cut short (a full disk, a bad copy) is an error naming the file, not a panic
/// inside redb.
#[test]
fn redb_store_truncated_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RedbStore::open(dir.path()).unwrap();
        s.commit(
            0,
            &[Op::Put {
                key: "k".into(),
                value: b"v".to_vec(),
            }],
        )
        .unwrap();
    }
    let path = dir.path().join("topology.redb");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(4096).unwrap();
    drop(f);
    let err = RedbStore::open(dir.path())
        .err()
        .expect("an error")
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("damaged"), "{err}");
}
