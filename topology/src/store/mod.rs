//! The `Store`: where desired state lives. A revisioned key-value space with compare-and-swap
//! commits and a change feed, deliberately shaped like etcd's (global revision, per-key
//! `mod_revision`, `Txn` guarded by a revision compare, watch from a revision) so a distributed
//! backend can follow. Two backends here: [`MemStore`] (tests, `--in-memory`) and [`RedbStore`]
//! (the embedded default, durable on commit).

mod memory;
mod redb;

pub use self::memory::MemStore;
pub use self::redb::RedbStore;

use crate::error::Result;

/// A store revision: 0 for an empty store, +1 per committed write.
pub type Revision = u64;

/// How many revisions of history a store keeps for [`Store::changes_since`].
pub const HISTORY: u64 = 10_000;

/// One write inside a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a key.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove a key (no error when absent).
    Delete {
        /// The key.
        key: String,
    },
}

/// A stored key with its value and the revision that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the commit that last put this key.
    pub mod_revision: Revision,
}

/// One change of one key, as the change feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The commit's revision.
    pub revision: Revision,
    /// The key.
    pub key: String,
    /// The new value, `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
}

/// A revisioned key-value store with a change feed.
///
/// Commits are atomic and, once `commit` returns, durable as far as the backend promises
/// (`RedbStore`: fsynced). Calls are blocking; async callers run them on a blocking thread.
pub trait Store: Send + Sync {
    /// The revision of the last commit.
    fn revision(&self) -> Result<Revision>;
    /// One key.
    fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Every key starting with `prefix`, in key order, read at one consistent revision (returned).
    fn range(&self, prefix: &str) -> Result<(Revision, Vec<KeyValue>)>;
    /// Applies `ops` atomically if the store is still at revision `expected`; returns the new
    /// revision. Fails with [`crate::Error::StoreConflict`] otherwise, changing nothing.
    fn commit(&self, expected: Revision, ops: &[Op]) -> Result<Revision>;
    /// Every event with a revision greater than `after`, in order. Fails with
    /// [`crate::Error::Compacted`] when that history is no longer kept.
    fn changes_since(&self, after: Revision) -> Result<Vec<Event>>;
    /// A receiver that sees the latest committed revision; with `changes_since` it makes a
    /// watch from any revision.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision>;
}

#[cfg(test)]
mod tests;
