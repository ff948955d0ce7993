//! What keeps a web browser from being used against the API. The API listens on loopback for
//! its operator, and any page the operator opens can make the browser send requests to it:
//! - a cross-origin `POST` with `Content-Type: text/plain` needs no CORS preflight, so writes
//!   with a body must say `application/json` (415 otherwise): a page cannot send that without
//!   a preflight, which this API never grants;
//! - a write carrying an `Origin` other than the API's own (`http://` + its `Host`) is refused
//!   (403): browsers send `Origin` on every cross-origin write;
//! - DNS rebinding points a name the attacker owns at 127.0.0.1, making the page same-origin
//!   with the API; its requests then carry that name in `Host`. Only IP literals, `localhost`
//!   and names configured with `serve --api-host` are accepted (421 otherwise).
//!
//! A request without `Host` (HTTP/1.0, in-process tests) is no browser's and passes that check.
//! The CLI and scripts use IP addresses and send JSON, so they pass unchanged.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

/// The request checks, with the host names accepted besides IP literals and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    names: Arc<[String]>,
}

impl Guard {
    /// A guard that also accepts `names` (compared without case) in `Host`.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Guard {
            names: names
                .into_iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Why `method` with `headers` is refused, if it is.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = match headers.get(header::HOST) {
            None => None,
            Some(v) => {
                let h = v
                    .to_str()
                    .map_err(|_| ApiError::bad_request("Host is not ASCII"))?;
                self.check_host(h)?;
                Some(h)
            }
        };
        let read_only = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if read_only {
            return Ok(());
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ours = host.is_some_and(|h| {
                origin.to_str().is_ok_and(|o| {
                    let o = o.to_ascii_lowercase();
                    let h = h.to_ascii_lowercase();
                    o == format!("http://{h}") || o == format!("https://{h}")
                })
            });
            if !ours {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "cross-origin write refused: Origin {:?} is not this API's",
                        String::from_utf8_lossy(origin.as_bytes())
                    ),
                ));
            }
        }
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        if has_body && !is_json(headers) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "a request body must be sent with Content-Type: application/json",
            ));
        }
        Ok(())
    }

    fn check_host(&self, host: &str) -> Result<(), ApiError> {
        let name = host_name(host).to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        let ok = name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || self.names.iter().any(|n| n == name);
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected",
                format!(
                    "Host {host:?} is not a name of this API: use an IP address or localhost, \
                     or start serve with --api-host {name}"
                ),
            ))
        }
    }
}

/// The host part of a `Host` value: without the port, and an IPv6 literal without brackets.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // One colon: name:port. More would be an unbracketed IPv6 address.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The middleware: refuses what [`Guard::check`] refuses, in the API's error shape.
pub async fn middleware(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    match guard.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, headers: &[(&str, &str)]) -> Result<(), u16> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        Guard::new(["ctl.example.".to_owned()])
            .check(&method, &map)
            .map_err(|e| e.status.as_u16())
    }

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "[::1]",
            "::1",
            "localhost:8080",
            "LocalHost.",
            "ctl.example",
            "CTL.example:80",
            "192.0.2.7",
        ] {
            assert_eq!(check(Method::GET, &[("host", ok)]), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "x",
            "",
        ] {
            assert_eq!(check(Method::GET, &[("host", bad)]), Err(421), "{bad:?}");
        }
        assert_eq!(check(Method::GET, &[]), Ok(()));
    }

    #[test]
    fn origins_on_writes() {
        let json = ("content-type", "application/json");
        let len = ("content-length", "2");
        let host = ("host", "127.0.0.1:8080");
        let w = |o: &'static str| check(Method::POST, &[host, json, len, ("origin", o)]);
        assert_eq!(w("http://127.0.0.1:8080"), Ok(()));
        assert_eq!(w("http://evil.example"), Err(403));
        assert_eq!(w("http://127.0.0.1:9999"), Err(403));
        assert_eq!(w("null"), Err(403));
        assert_eq!(
            check(Method::DELETE, &[host, ("origin", "http://evil.example")]),
            Err(403)
        );
        // Reads are the browser's same-origin policy's business.
        assert_eq!(
            check(Method::GET, &[host, ("origin", "http://evil.example")]),
            Ok(())
        );
        assert_eq!(check(Method::POST, &[host, json, len]), Ok(()));
    }

    #[test]
    fn writes_with_a_body_are_json() {
        let host = ("host", "127.0.0.1");
        let len = ("content-length", "2");
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            assert_eq!(
                check(Method::PUT, &[host, len, ("content-type", ok)]),
                Ok(()),
                "{ok}"
            );
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            assert_eq!(
                check(Method::POST, &[host, len, ("content-type", bad)]),
                Err(415),
                "{bad}"
            );
        }
        assert_eq!(check(Method::POST, &[host, len]), Err(415));
        assert_eq!(
            check(Method::POST, &[host, ("transfer-encoding", "chunked")]),
            Err(415)
        );
        // No body, nothing to type.
        assert_eq!(
            check(Method::POST, &[host, ("content-length", "0")]),
            Ok(())
        );
        assert_eq!(check(Method::DELETE, &[host]), Ok(()));
    }
}
