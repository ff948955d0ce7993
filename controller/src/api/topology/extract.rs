//! Extractors that turn every malformed request into an [`ApiError`] of the right class:
//! unreadable JSON is 400, a well-formed body with a bad value is 422 naming the field (the
//! path serde was at), a path segment that is not an id is 400. axum's own rejections would
//! answer plain text; these answer the DESIGN §3 error body.
//!
//! A body is also held to what the model can show back (422, naming the field): it must be a
//! JSON object (serde would build a struct from `[]`), every field must be one the resource
//! has, and every string must be at most [`MAX_STRING`] bytes with no control, bidi or
//! zero-width character (names and `tenant_id` are shown to people; such characters let one
//! name pass for another). Unknown fields are found by decoding and encoding the body again:
//! every field a resource has is encoded, the read-only runtime ones (`connected`, `ofport`,
//! `up`…) included, so a `GET` body sent back with `PUT` passes, while a misspelt field,
//! which serde would drop, does not.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::ApiError;

/// A JSON request body, decoded with field-level errors.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Serialize> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?;
        decode(&bytes).map(Body)
    }
}

/// The longest string a body may hold, in bytes of UTF-8 (as the store checks names).
pub const MAX_STRING: usize = 255;

/// Decodes a JSON object into a resource: syntax errors are 400; a body that is not an object,
/// type and value errors, unknown fields and unacceptable strings are 422 with the field.
pub fn decode<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, over the whole document: `[1,` must be a 400 even though a typed decode
    // would complain about the array (a 422) before reaching the truncation.
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !doc.is_object() {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "the body must be a JSON object",
        ));
    }
    let value = decode_typed(bytes)?;
    let shown = serde_json::to_value(&value)
        .map_err(|e| ApiError::internal(format!("encoding a decoded body: {e}")))?;
    if let Some(field) = unknown_field(&doc, &shown, "") {
        return Err(ApiError::invalid(
            field.clone(),
            format!("unknown field `{field}`"),
        ));
    }
    check_strings(&doc, "")?;
    Ok(value)
}

/// The path of a field of `doc` that `shown` (the decoded body encoded again) does not have.
fn unknown_field(doc: &Value, shown: &Value, at: &str) -> Option<String> {
    match (doc, shown) {
        (Value::Object(d), Value::Object(s)) => d.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            match s.get(k) {
                None => Some(path),
                Some(sv) => unknown_field(v, sv, &path),
            }
        }),
        (Value::Array(d), Value::Array(s)) if d.len() == s.len() => d
            .iter()
            .zip(s)
            .enumerate()
            .find_map(|(i, (dv, sv))| unknown_field(dv, sv, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// Every string in `v` is at most [`MAX_STRING`] bytes and has no character that hides
/// or reorders text.
fn check_strings(v: &Value, at: &str) -> Result<(), ApiError> {
    match v {
        Value::String(s) => {
            if s.len() > MAX_STRING {
                return Err(ApiError::invalid(
                    at,
                    format!("`{at}` is longer than {MAX_STRING} bytes"),
                ));
            }
            if let Some(c) = s.chars().find(|&c| hidden(c)) {
                return Err(ApiError::invalid(
                    at,
                    format!(
                        "`{at}` holds U+{:04X}: control, bidi and zero-width characters are refused",
                        u32::from(c)
                    ),
                ));
            }
            Ok(())
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_strings(x, &format!("{at}[{i}]"))),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            check_strings(x, &path)
        }),
        _ => Ok(()),
    }
}

/// Control characters (C0, DEL, C1), bidi embeddings, overrides, isolates and marks, and
/// zero-width or invisible format characters.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// The typed decode, with serde's path to the failing field.
fn decode_typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
