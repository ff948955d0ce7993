//! RFC 7047 OVSDB client: framing, methods, typed values and a replica of monitored tables.
//!
//! The protocol core is sans-IO (quinn/rustls style): [`framing`] splits the byte stream,
//! [`rpc::Session`] correlates requests and replies, answers `echo` and keeps the peer alive
//! with its own, [`idl::Replica`] follows `update`/`update2`/`update3`; all take time as an
//! argument and open no socket. [`client`] is the tokio driver: connections over `tcp:`/`unix:`
//! targets, a passive listener for hosts that dial in, and a monitored replica that resyncs
//! after a reconnect.

pub mod client;
pub mod error;
pub mod framing;
pub mod idl;
pub mod ops;
pub mod rpc;
pub mod schema;
pub mod value;

pub use error::{Error, Result, ServerError, ServerErrorKind};
pub use idl::{ChangeKind, Replica, RowChange, Txn};
pub use ops::{Condition, Function, Mutation, Mutator, Operation, OperationResult, WaitUntil};
pub use schema::DatabaseSchema;
pub use value::{Atom, Row, Value};
