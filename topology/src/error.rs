//! The one error type of the topology crate. Variants map one-to-one onto REST error classes
//! (404, 422, 409, 412), so the API layer never has to guess.

/// What went wrong while reading or changing the topology.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resource addressed does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind (`bridge`, `port`, …).
        kind: &'static str,
        /// Its id (or key, e.g. a MAC for DHCP hosts).
        id: String,
    },
    /// A value is not acceptable on its own or refers to something missing.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON field to blame (`address`, `nat_targets[0].port_to`, …).
        field: String,
        /// Why, for people.
        message: String,
    },
    /// The request contradicts the current state (duplicate, overlap, already linked…).
    #[error("{message}")]
    Conflict {
        /// Why, naming the other resource.
        message: String,
        /// The field that caused it, when one did.
        field: Option<String>,
    },
    /// Deleting something that another resource still refers to.
    #[error("{kind} {id} is still referenced by {referrer_kind} {referrer_id}")]
    Referenced {
        /// Kind of the resource being deleted.
        kind: &'static str,
        /// Its id.
        id: String,
        /// Kind of the resource that refers to it.
        referrer_kind: &'static str,
        /// Id of that resource.
        referrer_id: String,
    },
    /// Optimistic concurrency: the resource changed since the revision the client read.
    #[error("{kind} {id} is at revision {current}, not {expected}")]
    RevisionMismatch {
        /// Resource kind.
        kind: &'static str,
        /// Its id.
        id: String,
        /// The revision the client expected.
        expected: u64,
        /// The revision it is at.
        current: u64,
    },
    /// All 2^24-1 tunnel keys are in use.
    #[error("no free 24-bit tunnel key left")]
    TunnelKeysExhausted,
    /// The store's revision moved under us (another writer); the caller may retry.
    #[error("store revision is {current}, expected {expected}")]
    StoreConflict {
        /// The revision the write was based on.
        expected: u64,
        /// The store's actual revision.
        current: u64,
    },
    /// A watch asked for history the store no longer keeps.
    #[error("revision {requested} is compacted (oldest kept: {oldest})")]
    Compacted {
        /// Revision asked for.
        requested: u64,
        /// Oldest revision still available.
        oldest: u64,
    },
    /// A stored record cannot be decoded.
    #[error("corrupt record {key}: {message}")]
    Corrupt {
        /// Store key.
        key: String,
        /// Decoder message.
        message: String,
    },
    /// The storage backend failed (disk, database).
    #[error("store: {0}")]
    Store(String),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub(crate) fn conflict(field: Option<&str>, message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }
    pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
