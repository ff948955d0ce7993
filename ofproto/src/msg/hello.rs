//! HELLO and its elements (OpenFlow 1.3 version bitmap), ERROR, ECHO and EXPERIMENTER bodies:
//! the messages of the connection setup and keepalive.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codec::{pad8, put_zeros, ser, Reader};
use crate::error::{Ctx, Error, ErrorType, OFPET_EXPERIMENTER};
use crate::OFP_VERSION;

/// `OFPHET_VERSIONBITMAP`.
pub const OFPHET_VERSIONBITMAP: u16 = 1;

/// One `ofp_hello_elem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HelloElement {
    /// Bitmap of supported versions: bit `v % 32` of word `v / 32`.
    VersionBitmap(Vec<u32>),
    /// Element type we do not know, kept as received (without padding).
    Unknown {
        /// Element type.
        typ: u16,
        /// Element body.
        #[serde(serialize_with = "ser::hex")]
        data: Bytes,
    },
}

impl HelloElement {
    fn body_len(&self) -> usize {
        match self {
            HelloElement::VersionBitmap(b) => 4 * b.len(),
            HelloElement::Unknown { data, .. } => data.len(),
        }
    }
}

/// HELLO body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hello {
    /// Elements in wire order.
    pub elements: Vec<HelloElement>,
}

impl Hello {
    /// The HELLO we send: a version bitmap announcing OpenFlow 1.3 only.
    pub fn of13() -> Hello {
        Hello {
            elements: vec![HelloElement::VersionBitmap(vec![1 << OFP_VERSION])],
        }
    }

    /// Whether a peer that sent this HELLO with `header_version` supports version `v`: its
    /// bitmap decides when present, otherwise every version up to the header's (OF1.3.5 §6.3.1).
    pub fn supports(&self, header_version: u8, v: u8) -> bool {
        let bitmap = self.elements.iter().find_map(|e| match e {
            HelloElement::VersionBitmap(b) => Some(b),
            _ => None,
        });
        match bitmap {
            Some(words) => words
                .get(usize::from(v / 32))
                .is_some_and(|w| w & (1 << (v % 32)) != 0),
            None => v <= header_version,
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.elements
            .iter()
            .map(|e| {
                let l = 4 + e.body_len();
                l + pad8(l)
            })
            .sum()
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        for e in &self.elements {
            let l = 4 + e.body_len();
            match e {
                HelloElement::VersionBitmap(words) => {
                    out.put_u16(OFPHET_VERSIONBITMAP);
                    out.put_u16(l as u16);
                    for w in words {
                        out.put_u32(*w);
                    }
                }
                HelloElement::Unknown { typ, data } => {
                    out.put_u16(*typ);
                    out.put_u16(l as u16);
                    out.put_slice(data);
                }
            }
            put_zeros(out, pad8(l));
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Hello, Error> {
        let elements = r.list(|r| {
            let typ = r.u16()?;
            let len = usize::from(r.u16()?);
            if len < 4 {
                return Err(Error::BadLength {
                    ctx: Ctx::Hello,
                    length: len,
                });
            }
            let mut b = r.sub(len - 4, Ctx::Hello)?;
            let e = if typ == OFPHET_VERSIONBITMAP {
                if (len - 4) % 4 != 0 {
                    return Err(Error::BadLength {
                        ctx: Ctx::Hello,
                        length: len,
                    });
                }
                HelloElement::VersionBitmap(b.list(Reader::u32)?)
            } else {
                HelloElement::Unknown {
                    typ,
                    data: b.rest(),
                }
            };
            r.sub(pad8(len), Ctx::Hello)?.pad(pad8(len))?;
            Ok(e)
        })?;
        Ok(Hello { elements })
    }
}

/// ERROR body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorMsg {
    /// Type and code.
    pub kind: ErrorType,
    /// Usually the first bytes (at least 64) of the offending request.
    #[serde(serialize_with = "ser::hex")]
    pub data: Bytes,
}

impl ErrorMsg {
    /// An ERROR answering `request` (its first 64 bytes, as the spec asks).
    pub fn for_request(kind: ErrorType, request: &[u8]) -> ErrorMsg {
        ErrorMsg {
            kind,
            data: Bytes::copy_from_slice(&request[..request.len().min(64)]),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        match self.kind {
            ErrorType::Experimenter { .. } => 8 + self.data.len(),
            _ => 4 + self.data.len(),
        }
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        let (typ, code) = self.kind.type_code();
        out.put_u16(typ);
        out.put_u16(code);
        if let ErrorType::Experimenter { experimenter, .. } = self.kind {
            out.put_u32(experimenter);
        }
        out.put_slice(&self.data);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<ErrorMsg, Error> {
        let typ = r.u16()?;
        let code = r.u16()?;
        let kind = if typ == OFPET_EXPERIMENTER {
            ErrorType::Experimenter {
                exp_type: code,
                experimenter: r.u32()?,
            }
        } else {
            ErrorType::from_type_code(typ, code)
        };
        Ok(ErrorMsg {
            kind,
            data: r.rest(),
        })
    }
}

/// EXPERIMENTER message body (also how ONF and Nicira extension messages, e.g. OVS's role
/// status, reach us: opaque but intact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Experimenter {
    /// Experimenter id (`NX_VENDOR_ID`, `ONF_VENDOR_ID`, ...).
    pub experimenter: u32,
    /// Experimenter-defined type.
    pub exp_type: u32,
    /// The rest of the body.
    #[serde(serialize_with = "ser::hex")]
    pub data: Bytes,
}

impl Experimenter {
    pub(crate) fn encoded_len(&self) -> usize {
        8 + self.data.len()
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.experimenter);
        out.put_u32(self.exp_type);
        out.put_slice(&self.data);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Experimenter, Error> {
        Ok(Experimenter {
            experimenter: r.u32()?,
            exp_type: r.u32()?,
            data: r.rest(),
        })
    }
}
