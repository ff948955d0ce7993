//! The crate's one error type: malformed input, schema violations, server errors, transport.

use std::fmt;

/// Everything that can go wrong talking OVSDB.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that are not JSON.
    #[error("malformed JSON from peer: {0}")]
    MalformedJson(String),
    /// One message exceeded the configured cap.
    #[error("message exceeds {limit} bytes")]
    MessageTooLarge {
        /// The cap.
        limit: usize,
    },
    /// Valid JSON that is not a JSON-RPC 1.0 message of RFC 7047's shape.
    #[error("invalid JSON-RPC message: {0}")]
    InvalidMessage(String),
    /// A value that is not an OVSDB datum (RFC 7047 §5.1).
    #[error("invalid OVSDB value: {0}")]
    InvalidValue(String),
    /// A schema we cannot parse.
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    /// A table absent from the schema.
    #[error("unknown table {0}")]
    UnknownTable(String),
    /// A column absent from its table's schema.
    #[error("unknown column {table}.{column}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A value of the wrong type or size for its column.
    #[error("bad value for {table}.{column}: {reason}")]
    TypeMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON-RPC `error` reply to a method other than `transact`.
    #[error("{method} failed: {error}")]
    Rpc {
        /// The method we called.
        method: String,
        /// The server's error member.
        error: serde_json::Value,
    },
    /// A `transact` operation (or the commit, when `index` is past the last op) failed.
    #[error("transaction failed at operation {index}: {error}")]
    Server {
        /// Which result carried the error.
        index: usize,
        /// The server's error.
        error: ServerError,
    },
    /// A `wait` on rows we read failed: the replica was stale; rebuild and retry.
    #[error("the replica was stale: a verified row changed")]
    Stale,
    /// No reply within the request timeout.
    #[error("{0} timed out")]
    Timeout(String),
    /// We cancelled the request (`cancel`); any later reply is ignored.
    #[error("request cancelled")]
    Cancelled,
    /// The peer stopped answering our echo keepalives.
    #[error("peer stopped answering echo requests")]
    PeerDead,
    /// The connection is gone.
    #[error("disconnected")]
    Disconnected,
    /// Socket I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An error object from the server (RFC 7047 §4.1.3, §5.2): its kind and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The `error` member, parsed.
    pub kind: ServerErrorKind,
    /// The `details` member, if any.
    pub details: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(d) = &self.details {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// The error strings of RFC 7047 (and ovsdb-server), one variant each.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `constraint violation`
    ConstraintViolation,
    /// `referential integrity violation`
    ReferentialIntegrity,
    /// `resources exhausted`
    ResourcesExhausted,
    /// `I/O error`
    IoError,
    /// `duplicate uuid-name`
    DuplicateUuidName,
    /// `domain error`
    DomainError,
    /// `range error`
    RangeError,
    /// `timed out` (a `wait` that did not hold)
    TimedOut,
    /// `not supported`
    NotSupported,
    /// `aborted`
    Aborted,
    /// `not owner` (an `assert` on a lock we do not hold)
    NotOwner,
    /// `unknown database`
    UnknownDatabase,
    /// `syntax error`
    SyntaxError,
    /// Anything else, verbatim.
    Other(String),
}

impl ServerErrorKind {
    /// Parses the `error` string.
    pub fn parse(s: &str) -> Self {
        match s {
            "constraint violation" => Self::ConstraintViolation,
            "referential integrity violation" => Self::ReferentialIntegrity,
            "resources exhausted" => Self::ResourcesExhausted,
            "I/O error" => Self::IoError,
            "duplicate uuid-name" => Self::DuplicateUuidName,
            "domain error" => Self::DomainError,
            "range error" => Self::RangeError,
            "timed out" => Self::TimedOut,
            "not supported" => Self::NotSupported,
            "aborted" => Self::Aborted,
            "not owner" => Self::NotOwner,
            "unknown database" => Self::UnknownDatabase,
            "syntax error" => Self::SyntaxError,
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ServerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::ConstraintViolation => "constraint violation",
            Self::ReferentialIntegrity => "referential integrity violation",
            Self::ResourcesExhausted => "resources exhausted",
            Self::IoError => "I/O error",
            Self::DuplicateUuidName => "duplicate uuid-name",
            Self::DomainError => "domain error",
            Self::RangeError => "range error",
            Self::TimedOut => "timed out",
            Self::NotSupported => "not supported",
            Self::Aborted => "aborted",
            Self::NotOwner => "not owner",
            Self::UnknownDatabase => "unknown database",
            Self::SyntaxError => "syntax error",
            Self::Other(s) => s,
        };
        f.write_str(s)
    }
}

impl ServerError {
    /// Reads an error object `{"error": "...", "details": "..."}`.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let kind = v.get("error")?.as_str()?;
        Some(ServerError {
            kind: ServerErrorKind::parse(kind),
            details: v
                .get("details")
                .and_then(|d| d.as_str())
                .map(str::to_string),
        })
    }
}
