//! The REST API (axum) under `/api/v1`. Each resource module exposes `routes(state) -> Router`
//! with its own state; `app` merges them, so subsystems plug in without sharing one state type.

pub mod auth;
pub mod error;
pub mod guard;
pub mod listener;
pub mod switches;
pub mod topology;
pub mod trace;

pub use error::ApiError;

use axum::Router;

/// The whole API: `/api/v1/...` routes from every subsystem, merged, behind the default
/// [`guard::Guard`] (IP literals and `localhost` in `Host`).
pub fn app(parts: Vec<Router>) -> Router {
    app_with(parts, guard::Guard::default())
}

/// [`app`] behind `guard`.
pub fn app_with(parts: Vec<Router>, guard: guard::Guard) -> Router {
    app_at(parts, Router::new(), guard)
}

/// [`app_with`], with `root`'s routes outside `/api/v1` (`/metrics`), behind the same guard.
pub fn app_at(parts: Vec<Router>, root: Router, guard: guard::Guard) -> Router {
    let v1 = parts.into_iter().fold(Router::new(), Router::merge);
    root.nest("/api/v1", v1)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::middleware,
        ))
}
