//! The logical network model (DESIGN §3), its validation, the `Store` and immutable snapshots
//! for the hot path. No I/O towards switches: the only I/O is the store's own file.
//!
//! - [`model`]: the resources as the REST API shows them.
//! - [`Txn`]: validated changes (field-level errors, referential integrity, tunnel keys).
//! - [`Snapshot`]: the whole topology at one revision, with the indexes the simulation reads.
//! - [`Network`]: the single writer; publishes snapshots atomically and feeds subscribers.
//! - [`ovsdb_target`]: the one grammar of a host's `ovsdb` target.
//! - [`store`]: the revisioned key-value `Store` trait, in memory and on redb.

pub mod error;
pub mod model;
pub mod network;
pub mod ovsdb_target;
pub mod snapshot;
pub mod store;
pub mod txn;

pub use error::{Error, Result};
pub use model::*;
pub use network::Network;
pub use ovsdb_target::{OvsdbTarget, OvsdbTargetError};
pub use snapshot::{DeviceKind, Resource, Snapshot};
pub use store::{MemStore, RedbStore, Revision, Store};
pub use txn::{Txn, MAX_TUNNEL_KEY};

#[cfg(test)]
mod tests;
