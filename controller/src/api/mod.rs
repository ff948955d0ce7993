//! The REST API (axum) under `/api/v1`: one router composed of per-resource modules.
