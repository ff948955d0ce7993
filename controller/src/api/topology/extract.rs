//! Extractors that turn every malformed request into an [`ApiError`] of the right class:
//! unreadable JSON is 400, a well-formed body with a bad value is 422 naming the field (the
//! path serde was at), a path segment that is not an id is 400. axum's own rejections would
//! answer plain text; these answer the DESIGN §3 error body.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use crate::api::ApiError;

/// A JSON request body, decoded with field-level errors.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?;
        decode(&bytes).map(Body)
    }
}

/// Decodes a JSON document: syntax errors are 400, type and value errors 422 with the field.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, over the whole document: `[1,` must be a 400 even though a typed decode
    // would complain about the array (a 422) before reaching the truncation.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { String::new() } else { path };
                    let err = ApiError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        inner.to_string(),
                    );
                    if field.is_empty() {
                        err
                    } else {
                        err.with_field(field)
                    }
                }
                _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
            });
        }
    };
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Path parameters; a segment that does not parse (not a UUID, not a MAC) is a 400.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The `If-Match` precondition: the revision the client last saw (the ETag), or none.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let s = v
            .to_str()
            .map_err(|_| ApiError::bad_request("If-Match is not ASCII"))?
            .trim();
        if s == "*" {
            return Ok(IfMatch(None));
        }
        let digits = s.trim_start_matches("W/").trim_matches('"');
        digits
            .parse()
            .map(|r| IfMatch(Some(r)))
            .map_err(|_| ApiError::bad_request("If-Match must be an ETag this API gave (\"N\")"))
    }
}

/// An `ETag` header for a record at a revision.
pub fn etag(rev: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{rev}\"")) {
        h.insert(header::ETAG, v);
    }
    h
}

impl From<topology::Error> for ApiError {
    fn from(e: topology::Error) -> Self {
        use axum::http::StatusCode;
        use topology::Error as E;
        let msg = e.to_string();
        match e {
            E::NotFound { .. } => ApiError::not_found(msg),
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Conflict { field, .. } => {
                let err = ApiError::conflict(msg);
                match field {
                    Some(f) => err.with_field(f),
                    None => err,
                }
            }
            E::Referenced { .. } | E::TunnelKeysExhausted | E::StoreConflict { .. } => {
                ApiError::conflict(msg)
            }
            E::RevisionMismatch { .. } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", msg)
            }
            E::Compacted { .. } => ApiError::new(StatusCode::GONE, "compacted", msg),
            _ => ApiError::internal(msg),
        }
    }
}
