//! An in-memory [`Store`]: the reference the redb backend is tested against, and the backend of
//! `strowger serve --in-memory`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

use super::{Event, KeyValue, Op, Revision, Store, HISTORY};
use crate::error::{Error, Result};

/// A store that forgets everything when dropped.
pub struct MemStore {
    // A plain mutex: every call is short and never awaits, and commits must be serialised anyway.
    inner: Mutex<Inner>,
    notify: watch::Sender<Revision>,
}

#[derive(Default)]
struct Inner {
    revision: Revision,
    kv: BTreeMap<String, (Revision, Vec<u8>)>,
    log: VecDeque<Event>,
    /// Events with a revision ≤ this are gone from `log`.
    compacted: Revision,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        MemStore {
            inner: Mutex::new(Inner::default()),
            notify: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic mid-commit elsewhere; the maps are still consistent
        // because every commit validates before mutating, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemStore {
    fn revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().kv.get(key).map(|(rev, v)| KeyValue {
            key: key.to_owned(),
            value: v.clone(),
            mod_revision: *rev,
        }))
    }

    fn range(&self, prefix: &str) -> Result<(Revision, Vec<KeyValue>)> {
        let inner = self.lock();
        let kvs = inner
            .kv
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (rev, v))| KeyValue {
                key: k.clone(),
                value: v.clone(),
                mod_revision: *rev,
            })
            .collect();
        Ok((inner.revision, kvs))
    }

    fn commit(&self, expected: Revision, ops: &[Op]) -> Result<Revision> {
        let mut inner = self.lock();
        if inner.revision != expected {
            return Err(Error::StoreConflict {
                expected,
                current: inner.revision,
            });
        }
        let rev = inner.revision + 1;
        for op in ops {
            let event = match op {
                Op::Put { key, value } => {
                    inner.kv.insert(key.clone(), (rev, value.clone()));
                    Event {
                        revision: rev,
                        key: key.clone(),
                        value: Some(value.clone()),
                    }
                }
                Op::Delete { key } => {
                    inner.kv.remove(key);
                    Event {
                        revision: rev,
                        key: key.clone(),
                        value: None,
                    }
                }
            };
            inner.log.push_back(event);
        }
        inner.revision = rev;
        if rev > HISTORY {
            let floor = rev - HISTORY;
            while inner.log.front().is_some_and(|e| e.revision <= floor) {
                inner.log.pop_front();
            }
            inner.compacted = floor;
        }
        drop(inner);
        self.notify.send_replace(rev);
        Ok(rev)
    }

    fn changes_since(&self, after: Revision) -> Result<Vec<Event>> {
        let inner = self.lock();
        if after < inner.compacted {
            return Err(Error::Compacted {
                requested: after,
                oldest: inner.compacted,
            });
        }
        Ok(inner
            .log
            .iter()
            .filter(|e| e.revision > after)
            .cloned()
            .collect())
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.notify.subscribe()
    }
}
