//! The embedded default [`Store`], on redb: one file in `--data-dir`. redb commits with
//! `Durability::Immediate` (fsync before `commit` returns), so a write the API acknowledged
//! survives `kill -9` and power loss.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::watch;

use super::{Event, KeyValue, Op, Revision, Store, HISTORY};
use crate::error::{Error, Result};

/// key → (mod_revision, value)
const KV: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("kv");
/// (revision, index in the commit) → (key, value or None for a delete)
const LOG: TableDefinition<LogKey, LogValue> = TableDefinition::new("log");
type LogKey = (u64, u32);
type LogValue<'a> = (&'a str, Option<&'a [u8]>);
/// `revision`, `compacted`
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A redb database file holding the store.
pub struct RedbStore {
    db: Database,
    notify: watch::Sender<Revision>,
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) `dir/topology.redb`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Store(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("topology.redb");
        // redb asserts rather than fails on some damage (a file shorter than its header
        // says, after a truncation): that is input, so it becomes an error naming the file.
        let db = std::panic::catch_unwind(|| Database::create(&path))
            .map_err(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Error::Store(format!(
                    "{} is damaged (truncated?): {why}; restore it from a backup, or move it \
                     away to start with an empty topology",
                    path.display()
                ))
            })?
            .map_err(|e| Error::Store(format!("opening {}: {e}", path.display())))?;
        // Create the tables once so read transactions never meet a missing table.
        let w = db.begin_write().map_err(db_err)?;
        {
            w.open_table(KV).map_err(db_err)?;
            w.open_table(LOG).map_err(db_err)?;
            w.open_table(META).map_err(db_err)?;
        }
        w.commit().map_err(db_err)?;
        let store = RedbStore {
            db,
            notify: watch::channel(0).0,
        };
        store.notify.send_replace(store.revision()?);
        Ok(store)
    }

    fn meta(&self, name: &str) -> Result<u64> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(META).map_err(db_err)?;
        Ok(t.get(name).map_err(db_err)?.map(|v| v.value()).unwrap_or(0))
    }
}

impl Store for RedbStore {
    fn revision(&self) -> Result<Revision> {
        self.meta("revision")
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(KV).map_err(db_err)?;
        Ok(t.get(key).map_err(db_err)?.map(|g| {
            let (rev, v) = g.value();
            KeyValue {
                key: key.to_owned(),
                value: v.to_vec(),
                mod_revision: rev,
            }
        }))
    }

    fn range(&self, prefix: &str) -> Result<(Revision, Vec<KeyValue>)> {
        // One read transaction: the revision and the keys come from the same MVCC snapshot.
        let r = self.db.begin_read().map_err(db_err)?;
        let meta = r.open_table(META).map_err(db_err)?;
        let rev = meta
            .get("revision")
            .map_err(db_err)?
            .map(|v| v.value())
            .unwrap_or(0);
        let t = r.open_table(KV).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            let (mod_revision, value) = v.value();
            out.push(KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                mod_revision,
            });
        }
        Ok((rev, out))
    }

    fn commit(&self, expected: Revision, ops: &[Op]) -> Result<Revision> {
        // redb serialises write transactions, so the compare below and the writes are atomic.
        let w = self.db.begin_write().map_err(db_err)?;
        let rev;
        {
            let mut meta = w.open_table(META).map_err(db_err)?;
            let current = meta
                .get("revision")
                .map_err(db_err)?
                .map(|v| v.value())
                .unwrap_or(0);
            if current != expected {
                return Err(Error::StoreConflict { expected, current });
            }
            rev = current + 1;
            let mut kv = w.open_table(KV).map_err(db_err)?;
            let mut log = w.open_table(LOG).map_err(db_err)?;
            for (i, op) in ops.iter().enumerate() {
                // Commits are far smaller than 2^32 ops; saturate rather than wrap just in case.
                let seq = u32::try_from(i).unwrap_or(u32::MAX);
                match op {
                    Op::Put { key, value } => {
                        kv.insert(key.as_str(), (rev, value.as_slice()))
                            .map_err(db_err)?;
                        log.insert((rev, seq), (key.as_str(), Some(value.as_slice())))
                            .map_err(db_err)?;
                    }
                    Op::Delete { key } => {
                        kv.remove(key.as_str()).map_err(db_err)?;
                        log.insert((rev, seq), (key.as_str(), None))
                            .map_err(db_err)?;
                    }
                }
            }
            meta.insert("revision", rev).map_err(db_err)?;
            if rev > HISTORY {
                let floor = rev - HISTORY;
                log.retain_in(..(floor + 1, 0), |_, _| false)
                    .map_err(db_err)?;
                meta.insert("compacted", floor).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)?;
        self.notify.send_replace(rev);
        Ok(rev)
    }

    fn changes_since(&self, after: Revision) -> Result<Vec<Event>> {
        let compacted = self.meta("compacted")?;
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                oldest: compacted,
            });
        }
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(LOG).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.range((after + 1, 0)..).map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let (revision, _) = k.value();
            let (key, value) = v.value();
            out.push(Event {
                revision,
                key: key.to_owned(),
                value: value.map(<[u8]>::to_vec),
            });
        }
        Ok(out)
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.notify.subscribe()
    }
}
