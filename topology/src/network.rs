//! [`Network`]: the one writer of the topology. It serialises changes, commits each as one
//! store transaction, and publishes the resulting [`Snapshot`] atomically: readers load an
//! `Arc<Snapshot>` from an `ArcSwap` (a few atomic operations, never a lock), and subscribers
//! are woken through a `watch` channel.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::store::{Revision, Store};
use crate::txn::Txn;

/// The topology service: a store, the current snapshot and a change feed. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    current: ArcSwap<Snapshot>,
    // Serialises writers only: a write derives the next snapshot from the current one and
    // commits it, which must not interleave with another write. Readers never touch it.
    writer: Mutex<()>,
    feed: watch::Sender<Arc<Snapshot>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl Network {
    /// Loads the whole topology from `store`.
    pub fn open(store: Arc<dyn Store>) -> Result<Network> {
        let snap = Arc::new(Self::load(&*store)?);
        Ok(Network {
            inner: Arc::new(Inner {
                store,
                current: ArcSwap::new(snap.clone()),
                writer: Mutex::new(()),
                feed: watch::channel(snap).0,
            }),
        })
    }

    fn load(store: &dyn Store) -> Result<Snapshot> {
        let (rev, records) = store.range("")?;
        Snapshot::from_records(rev, &records)
    }

    /// The current snapshot. Never blocks; hold it as long as needed.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// A receiver that always holds the latest snapshot and wakes on every change (OVSDB
    /// provisioning, flow invalidation). Consumers diff the snapshots they saw.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.feed.subscribe()
    }

    /// The store underneath (for its own change feed, `Store::changes_since`).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Runs `f` on a transaction over the current snapshot; if it succeeds, commits its writes
    /// and publishes the new snapshot. Returns `f`'s value and the new revision. On any error
    /// nothing changes. Blocking (the store may fsync).
    pub fn write<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<(T, Revision)> {
        // A poisoned writer lock only means a panic in an earlier `f`, which published nothing.
        let _guard = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let base = self.snapshot();
        let mut txn = Txn::new(Snapshot::clone(&base));
        let value = f(&mut txn)?;
        let (mut next, ops, touched) = txn.into_ops();
        if ops.is_empty() {
            return Ok((value, base.revision));
        }
        let rev = match self.inner.store.commit(base.revision, &ops) {
            Ok(rev) => rev,
            Err(e @ Error::StoreConflict { .. }) => {
                // Someone else wrote to the store (another controller on a shared backend):
                // catch up so the next write starts from the truth, and report the conflict.
                let fresh = Arc::new(Self::load(&*self.inner.store)?);
                self.publish(fresh);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        next.revision = rev;
        for id in touched {
            next.mod_revisions.insert(id, rev);
        }
        self.publish(Arc::new(next));
        Ok((value, rev))
    }

    fn publish(&self, snap: Arc<Snapshot>) {
        self.inner.current.store(snap.clone());
        self.inner.feed.send_replace(snap);
    }
}
