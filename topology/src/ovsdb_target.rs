//! The one grammar of OVSDB targets (`tcp:IP:PORT`, `ssl:IP:PORT`, `unix:PATH`): what validation accepts in a
//! host's `ovsdb` field is exactly what the provisioner dials, so nothing is accepted by the
//! REST API and then silently never provisioned.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a host's OVSDB server listens, as the controller dials it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OvsdbTarget {
    /// `tcp:IP:PORT` (an IPv6 address in brackets: `tcp:[2001:db8::1]:6640`); no host names, no
    /// default port, port 0 refused.
    Tcp(SocketAddr),
    /// `ssl:IP:PORT`, as `tcp:`, over TLS (the controller must run with `--tls-*`; the host's
    /// certificate must be the host's `cert_cn`).
    Ssl(SocketAddr),
    /// `unix:PATH`, a non-empty path.
    Unix(PathBuf),
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OvsdbTargetError {
    /// Anything else that is not `tcp:IP:PORT`, `ssl:IP:PORT` or `unix:PATH`.
    #[error(
        "expected tcp:IP:PORT or ssl:IP:PORT (IPv6 as tcp:[IP]:PORT, port 1-65535) or unix:PATH"
    )]
    Malformed,
}

impl FromStr for OvsdbTarget {
    type Err = OvsdbTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("tcp", addr)) => match addr.parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => Ok(OvsdbTarget::Tcp(a)),
                _ => Err(OvsdbTargetError::Malformed),
            },
            Some(("unix", path)) if !path.is_empty() => Ok(OvsdbTarget::Unix(path.into())),
            Some(("ssl", addr)) => match addr.parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => Ok(OvsdbTarget::Ssl(a)),
                _ => Err(OvsdbTargetError::Malformed),
            },
            _ => Err(OvsdbTargetError::Malformed),
        }
    }
}

impl fmt::Display for OvsdbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OvsdbTarget::Tcp(a) => write!(f, "tcp:{a}"),
            OvsdbTarget::Ssl(a) => write!(f, "ssl:{a}"),
            OvsdbTarget::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar() {
        for (text, want) in [
            (
                "tcp:192.0.2.1:6640",
                OvsdbTarget::Tcp("192.0.2.1:6640".parse().unwrap()),
            ),
            (
                "tcp:[2001:db8::1]:6641",
                OvsdbTarget::Tcp("[2001:db8::1]:6641".parse().unwrap()),
            ),
            (
                "unix:/run/db.sock",
                OvsdbTarget::Unix("/run/db.sock".into()),
            ),
        ] {
            let got: OvsdbTarget = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), text, "round trip");
        }
        assert_eq!(
            "ssl:192.0.2.1:6640".parse::<OvsdbTarget>(),
            Ok(OvsdbTarget::Ssl("192.0.2.1:6640".parse().unwrap()))
        );
        for bad in [
            "",
            "tcp:",
            "tcp:192.0.2.1",
            "tcp:192.0.2.1:0",
            "tcp:192.0.2.1:65536",
            "ssl:192.0.2.1",
            "ssl:host.example:6640",
            "tcp:host.example:6640",
            "tcp:2001:db8::1:6640",
            "unix:",
            "ptcp:6640",
            "192.0.2.1:6640",
        ] {
            assert_eq!(
                bad.parse::<OvsdbTarget>(),
                Err(OvsdbTargetError::Malformed),
                "{bad}"
            );
        }
    }
}
