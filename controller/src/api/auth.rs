//! Bearer tokens for the REST API (`serve --api-token-file FILE`).
//!
//! The file has one token per line, `ROLE:TOKEN` or `ROLE:sha256:HEX` (the SHA-256 of the
//! token, so the file need not hold the secret; `printf %s TOKEN | sha256sum`); `#` starts a
//! comment. Roles: `admin` may do everything, `reader` only reads (`GET`/`HEAD`, `/metrics`
//! included). Only the tokens' hashes are kept in memory.
//!
//! With tokens configured, every request but `GET /api/v1/health` needs
//! `Authorization: Bearer TOKEN`: none or an unknown one is 401 (`unauthorized`, with
//! `WWW-Authenticate: Bearer`), a reader's write is 403 (`forbidden`), both in the API's error
//! shape. A presented token is hashed and compared with *every* known hash in constant time
//! (`subtle`), so neither the position of the first differing byte nor which entry matched
//! shows in the time an answer takes. Tokens should be random (at least 128 bits: `openssl
//! rand -hex 32`), which is why one SHA-256 and no slow password hash is enough.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::ApiError;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads only: `GET` and `HEAD`.
    Reader,
    /// Everything.
    Admin,
}

/// The known tokens, as SHA-256 hashes with their roles. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Arc<[(Role, [u8; 32])]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish()
    }
}

impl Tokens {
    /// Reads a token file (see the module doc).
    pub fn load(path: &Path) -> anyhow::Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        Tokens::parse(&text).with_context(|| format!("in the token file {}", path.display()))
    }

    /// Parses the text of a token file.
    pub fn parse(text: &str) -> anyhow::Result<Tokens> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (role, secret) = line
                .split_once(':')
                .with_context(|| format!("line {}: expected ROLE:TOKEN", n + 1))?;
            let role = match role.trim() {
                "admin" => Role::Admin,
                "reader" => Role::Reader,
                other => anyhow::bail!("line {}: unknown role {other:?} (admin, reader)", n + 1),
            };
            let hash = match secret.strip_prefix("sha256:") {
                Some(hex_hash) => {
                    let mut h = [0u8; 32];
                    hex::decode_to_slice(hex_hash.trim(), &mut h)
                        .with_context(|| format!("line {}: sha256: wants 64 hex digits", n + 1))?;
                    h
                }
                None => {
                    anyhow::ensure!(
                        secret.len() >= 16,
                        "line {}: a token must have at least 16 characters",
                        n + 1
                    );
                    Sha256::digest(secret.as_bytes()).into()
                }
            };
            entries.push((role, hash));
        }
        anyhow::ensure!(!entries.is_empty(), "no token");
        Ok(Tokens {
            entries: entries.into(),
        })
    }

    /// The role of `token`, if it is known. Compares its hash with every entry, in constant
    /// time, whatever matches.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut admin = subtle::Choice::from(0);
        let mut reader = subtle::Choice::from(0);
        for (role, hash) in self.entries.iter() {
            let eq = presented.ct_eq(hash);
            match role {
                Role::Admin => admin |= eq,
                Role::Reader => reader |= eq,
            }
        }
        if bool::from(admin) {
            Some(Role::Admin)
        } else if bool::from(reader) {
            Some(Role::Reader)
        } else {
            None
        }
    }

    /// Whether a request may go on: `Err` is the answer when not.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<(), ApiError> {
        if path == "/api/v1/health" && matches!(*method, Method::GET | Method::HEAD) {
            return Ok(());
        }
        let token = authorization.and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let Some(token) = token else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API needs a bearer token: Authorization: Bearer TOKEN (the CLI reads STROWGER_TOKEN or --token-file)",
            ));
        };
        match self.role_of(token) {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown bearer token",
            )),
            Some(Role::Reader) if !matches!(*method, Method::GET | Method::HEAD) => {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("a reader token may only read; {method} needs an admin token"),
                ))
            }
            Some(_) => Ok(()),
        }
    }
}

/// The middleware: refuses what [`Tokens::check`] refuses, in the API's error shape.
pub async fn middleware(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    match tokens.check(
        req.method(),
        req.uri().path(),
        req.headers().get(header::AUTHORIZATION),
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let unauthorized = e.status == StatusCode::UNAUTHORIZED;
            let mut r = e.into_response();
            if unauthorized {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# roles\nadmin:0123456789abcdef-admin\nreader:sha256:";

    fn tokens() -> Tokens {
        let reader_hash = hex::encode(Sha256::digest(b"0123456789abcdef-reader"));
        Tokens::parse(&format!("{FILE}{reader_hash}\n")).unwrap()
    }

    fn bearer(t: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {t}")).unwrap()
    }

    #[test]
    fn roles_by_token_plain_or_hashed() {
        let t = tokens();
        assert_eq!(t.role_of("0123456789abcdef-admin"), Some(Role::Admin));
        assert_eq!(t.role_of("0123456789abcdef-reader"), Some(Role::Reader));
        assert_eq!(t.role_of("0123456789abcdef-admi"), None);
        assert_eq!(t.role_of(""), None);
        assert!(!format!("{t:?}").contains(&hex::encode(Sha256::digest(b"0123456789abcdef-admin"))));
    }

    #[test]
    fn checks_by_method_and_path() {
        let t = tokens();
        let admin = bearer("0123456789abcdef-admin");
        let reader = bearer("0123456789abcdef-reader");
        let code = |m: Method, p: &str, a: Option<&HeaderValue>| {
            t.check(&m, p, a).err().map(|e| e.status.as_u16())
        };
        assert_eq!(code(Method::GET, "/api/v1/health", None), None);
        assert_eq!(code(Method::GET, "/api/v1/hosts", None), Some(401));
        assert_eq!(code(Method::GET, "/metrics", None), Some(401));
        assert_eq!(
            code(
                Method::GET,
                "/api/v1/hosts",
                Some(&bearer("nope-nope-nope-nope"))
            ),
            Some(401)
        );
        assert_eq!(code(Method::GET, "/api/v1/hosts", Some(&reader)), None);
        assert_eq!(code(Method::GET, "/metrics", Some(&reader)), None);
        assert_eq!(
            code(Method::POST, "/api/v1/hosts", Some(&reader)),
            Some(403)
        );
        assert_eq!(code(Method::DELETE, "/api/v1/hosts/x", Some(&admin)), None);
        assert_eq!(code(Method::POST, "/api/v1/health", None), Some(401));
    }

    #[test]
    fn refuses_bad_files() {
        assert!(Tokens::parse("").is_err());
        assert!(Tokens::parse("root:0123456789abcdef").is_err());
        assert!(Tokens::parse("admin:short").is_err());
        assert!(Tokens::parse("admin:sha256:abcd").is_err());
        assert!(Tokens::parse("0123456789abcdef").is_err());
    }
}
