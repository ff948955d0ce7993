//! The REST API (axum) under `/api/v1`. Each resource module exposes `routes(state) -> Router`
//! with its own state; `app` merges them, so subsystems plug in without sharing one state type.

pub mod error;
pub mod listener;
pub mod switches;
pub mod topology;

pub use error::ApiError;

use axum::Router;

/// The whole API: `/api/v1/...` routes from every subsystem, merged.
pub fn app(parts: Vec<Router>) -> Router {
    let v1 = parts.into_iter().fold(Router::new(), Router::merge);
    Router::new().nest("/api/v1", v1)
}
