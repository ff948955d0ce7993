//! The logical network model, its validation, the `Store` and immutable snapshots for the hot path.
