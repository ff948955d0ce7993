//! The byte cursor every parser reads through, and the small helpers every emitter shares.
//!
//! `Reader` is rustls-style: it owns a `Bytes` view of what is left, every read checks the
//! remaining length first (so input can never make us panic or over-read), `sub(n)` hands out a
//! length-bounded child for a length-prefixed part, and `finish()` rejects leftovers. Payloads are
//! returned as `Bytes` slices of the input, never copied.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Ctx, Error};

/// A bounds-checked cursor over part of a message. It borrows the message's `Bytes` and
/// keeps a window (`pos..end`), so sub-readers cost nothing; only payloads returned as `Bytes`
/// take a reference count.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    ctx: Ctx,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a Bytes, ctx: Ctx) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            ctx,
        }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek(&self) -> &'a [u8] {
        &self.buf[self.pos..self.end]
    }

    /// Consumes `n` bytes and returns them as a slice; the only place that checks bounds.
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(Error::Truncated {
                ctx: self.ctx,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// `n` bytes as a zero-copy slice of the input.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, Error> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..start + n))
    }

    /// Skips `n` padding bytes, which must be zero: accepting garbage there would make
    /// `emit(parse(b)) != b`, and OVS always zeroes padding.
    #[inline]
    pub(crate) fn pad(&mut self, n: usize) -> Result<(), Error> {
        // OR-fold rather than `any`: no early exit, so short pads compile to a few ORs.
        if self.take(n)?.iter().fold(0, |acc, &b| acc | b) != 0 {
            return Err(Error::NonZeroPadding { ctx: self.ctx });
        }
        Ok(())
    }

    /// A child reader over the next `n` bytes, reporting errors in `ctx`.
    #[inline]
    pub(crate) fn sub(&mut self, n: usize, ctx: Ctx) -> Result<Reader<'a>, Error> {
        let start = self.pos;
        self.take(n)?;
        Ok(Reader {
            buf: self.buf,
            pos: start,
            end: start + n,
            ctx,
        })
    }

    /// A child reader over everything left (consumed from `self`), reporting errors in `ctx`.
    #[inline]
    pub(crate) fn rest_reader(&mut self, ctx: Ctx) -> Reader<'a> {
        let child = Reader {
            buf: self.buf,
            pos: self.pos,
            end: self.end,
            ctx,
        };
        self.pos = self.end;
        child
    }

    /// Everything left, as a zero-copy slice.
    #[inline]
    pub(crate) fn rest(&mut self) -> Bytes {
        let start = self.pos;
        self.pos = self.end;
        if start == self.end {
            Bytes::new()
        } else {
            self.buf.slice(start..self.end)
        }
    }

    /// Fails if anything is left unread.
    #[inline]
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                ctx: self.ctx,
                extra: self.remaining(),
            })
        }
    }

    /// A fixed-size, NUL-padded string field (port names, descriptions). The bytes after the
    /// first NUL must be zero, and the text must be UTF-8, so that re-emitting is byte-identical.
    pub(crate) fn fixed_str(&mut self, n: usize) -> Result<String, Error> {
        let raw = self.take(n)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(n);
        if raw[end..].iter().any(|&b| b != 0) {
            return Err(Error::NonZeroPadding { ctx: self.ctx });
        }
        std::str::from_utf8(&raw[..end])
            .map(str::to_owned)
            .map_err(|_| Error::BadValue {
                ctx: self.ctx,
                what: "string field is not UTF-8",
            })
    }

    /// Reads items until this reader is exhausted. Every item consumes at least one byte (each
    /// parser rejects zero lengths), so the loop and the vector are bounded by the input size.
    pub(crate) fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Reader<'a>) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        self.each(|r| {
            out.push(item(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `item` until this reader is exhausted; `list` for callers with their own container.
    #[inline]
    pub(crate) fn each(
        &mut self,
        mut item: impl FnMut(&mut Reader<'a>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        while !self.is_empty() {
            let before = self.pos;
            item(self)?;
            if self.pos == before {
                // Unreachable with our parsers; kept so a future one cannot spin forever.
                return Err(Error::BadLength {
                    ctx: self.ctx,
                    length: 0,
                });
            }
        }
        Ok(())
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

/// Writes a zero u16 length placeholder and returns its position, for [`patch_len`].
pub(crate) fn put_len_placeholder(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_u16(0);
    at
}

/// Fills the placeholder at `at` with the number of bytes written since `start`. Emitters
/// measure what they wrote instead of walking nested lists twice; an overflowing inner length
/// can only occur in a message over 65535 bytes, which `OfMessage::try_emit` rejects.
pub(crate) fn patch_len(out: &mut BytesMut, at: usize, start: usize) {
    let len = (out.len() - start) as u16;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
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
