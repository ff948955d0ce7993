//! The byte cursor every parser reads through, and the small helpers every emitter shares.
//!
//! `Reader` is rustls-style: it owns a `Bytes` view of what is left, every read checks the
//! remaining length first (so input can never make us panic or over-read), `sub(n)` hands out a
//! length-bounded child for a length-prefixed part, and `finish()` rejects leftovers. Payloads are
//! returned as `Bytes` slices of the input, never copied.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Ctx, Error};

/// A bounds-checked cursor over the unread part of a message.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    buf: Bytes,
    ctx: Ctx,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, ctx: Ctx) -> Self {
        Reader { buf, ctx }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf
    }

    fn need(&self, n: usize) -> Result<(), Error> {
        if self.buf.len() < n {
            Err(Error::Truncated {
                ctx: self.ctx,
                needed: n,
                available: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        self.need(8)?;
        Ok(self.buf.get_u64())
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.need(N)?;
        let mut a = [0u8; N];
        self.buf.copy_to_slice(&mut a);
        Ok(a)
    }

    /// `n` bytes as a zero-copy slice of the input.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, Error> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Skips `n` padding bytes, which must be zero: accepting garbage there would make
    /// `emit(parse(b)) != b`, and OVS always zeroes padding.
    pub(crate) fn pad(&mut self, n: usize) -> Result<(), Error> {
        self.need(n)?;
        if self.buf[..n].iter().any(|&b| b != 0) {
            return Err(Error::NonZeroPadding { ctx: self.ctx });
        }
        self.buf.advance(n);
        Ok(())
    }

    /// A child reader over the next `n` bytes, reporting errors in `ctx`.
    pub(crate) fn sub(&mut self, n: usize, ctx: Ctx) -> Result<Reader, Error> {
        self.need(n)?;
        Ok(Reader::new(self.buf.split_to(n), ctx))
    }

    /// Everything left, as a zero-copy slice.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails if anything is left unread.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                ctx: self.ctx,
                extra: self.buf.len(),
            })
        }
    }

    /// A fixed-size, NUL-padded string field (port names, descriptions). The bytes after the
    /// first NUL must be zero, and the text must be UTF-8, so that re-emitting is byte-identical.
    pub(crate) fn fixed_str(&mut self, n: usize) -> Result<String, Error> {
        let raw = self.bytes(n)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(n);
        if raw[end..].iter().any(|&b| b != 0) {
            return Err(Error::NonZeroPadding { ctx: self.ctx });
        }
        String::from_utf8(raw[..end].to_vec()).map_err(|_| Error::BadValue {
            ctx: self.ctx,
            what: "string field is not UTF-8",
        })
    }

    /// Reads items until this reader is exhausted. Every item consumes at least one byte (each
    /// parser rejects zero lengths), so the loop and the vector are bounded by the input size.
    pub(crate) fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Reader) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        while !self.is_empty() {
            let before = self.remaining();
            out.push(item(self)?);
            if self.remaining() == before {
                // Unreachable with our parsers; kept so a future one cannot spin forever.
                return Err(Error::BadLength {
                    ctx: self.ctx,
                    length: 0,
                });
            }
        }
        Ok(out)
    }
}

/// Bytes needed to pad `len` up to a multiple of 8.
pub(crate) fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

pub(crate) fn put_zeros(out: &mut BytesMut, n: usize) {
    out.put_bytes(0, n);
}

/// Writes `s` into a fixed `n`-byte NUL-padded field; longer text is cut at a char boundary
/// (the wire cannot carry it, and the emitter must not fail).
pub(crate) fn put_fixed_str(out: &mut BytesMut, s: &str, n: usize) {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_slice(&s.as_bytes()[..end]);
    put_zeros(out, n - end);
}

/// serde helpers: binary payloads as lowercase hex strings, MACs as `aa:bb:..`, so the JSON
/// that `strowger ofp decode` prints is readable.
pub(crate) mod ser {
    use serde::Serializer;

    pub(crate) fn hex<S: Serializer>(b: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(b.len() * 2);
        for byte in b.iter() {
            out.push_str(&format!("{byte:02x}"));
        }
        s.serialize_str(&out)
    }

    pub(crate) fn mac<S: Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::display::Mac(*m).to_string())
    }

    pub(crate) fn opt_mac<S: Serializer>(m: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => mac(m, s),
            None => s.serialize_none(),
        }
    }
}
