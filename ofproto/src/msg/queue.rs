//! QUEUE_GET_CONFIG request/reply: queues of a port and their properties.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codec::{put_zeros, ser, Reader};
use crate::error::{Ctx, Error};

/// QUEUE_GET_CONFIG_REQUEST body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueGetConfigRequest {
    /// Port to query (`OFPP_ANY` = all).
    pub port: u32,
}

impl QueueGetConfigRequest {
    pub(crate) const LEN: usize = 8;

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.port);
        put_zeros(out, 4);
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, Error> {
        let port = r.u32()?;
        r.pad(4)?;
        Ok(QueueGetConfigRequest { port })
    }
}

/// A queue property (`ofp_queue_prop_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum QueueProp {
    /// OFPQT_MIN_RATE, in 1/10 of a percent.
    MinRate(u16),
    /// OFPQT_MAX_RATE, in 1/10 of a percent.
    MaxRate(u16),
    /// OFPQT_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Data after the experimenter id and its padding.
        #[serde(serialize_with = "ser::hex")]
        data: Bytes,
    },
    /// A property type OpenFlow 1.3 does not define, kept as received.
    Unknown {
        /// Property type.
        typ: u16,
        /// Body after the 8-byte property header.
        #[serde(serialize_with = "ser::hex")]
        data: Bytes,
    },
}

impl QueueProp {
    fn encoded_len(&self) -> usize {
        match self {
            QueueProp::MinRate(_) | QueueProp::MaxRate(_) => 16,
            QueueProp::Experimenter { data, .. } => 16 + data.len(),
            QueueProp::Unknown { data, .. } => 8 + data.len(),
        }
    }

    fn emit(&self, out: &mut BytesMut) {
        let len = self.encoded_len() as u16;
        match self {
            QueueProp::MinRate(rate) | QueueProp::MaxRate(rate) => {
                out.put_u16(if matches!(self, QueueProp::MinRate(_)) {
                    1
                } else {
                    2
                });
                out.put_u16(len);
                put_zeros(out, 4);
                out.put_u16(*rate);
                put_zeros(out, 6);
            }
            QueueProp::Experimenter { experimenter, data } => {
                out.put_u16(0xffff);
                out.put_u16(len);
                put_zeros(out, 4);
                out.put_u32(*experimenter);
                put_zeros(out, 4);
                out.put_slice(data);
            }
            QueueProp::Unknown { typ, data } => {
                out.put_u16(*typ);
                out.put_u16(len);
                put_zeros(out, 4);
                out.put_slice(data);
            }
        }
    }

    fn read(r: &mut Reader) -> Result<QueueProp, Error> {
        let typ = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 {
            return Err(Error::BadLength {
                ctx: Ctx::Queue,
                length: len,
            });
        }
        let mut b = r.sub(len - 4, Ctx::Queue)?;
        b.pad(4)?;
        let p = match typ {
            1 | 2 => {
                let rate = b.u16()?;
                b.pad(6)?;
                if typ == 1 {
                    QueueProp::MinRate(rate)
                } else {
                    QueueProp::MaxRate(rate)
                }
            }
            0xffff => {
                let experimenter = b.u32()?;
                b.pad(4)?;
                QueueProp::Experimenter {
                    experimenter,
                    data: b.rest(),
                }
            }
            _ => QueueProp::Unknown {
                typ,
                data: b.rest(),
            },
        };
        b.finish()?;
        Ok(p)
    }
}

/// `ofp_packet_queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketQueue {
    /// Queue id.
    pub queue_id: u32,
    /// Port this queue is attached to.
    pub port: u32,
    /// Properties.
    pub properties: Vec<QueueProp>,
}

impl PacketQueue {
    fn encoded_len(&self) -> usize {
        16 + self
            .properties
            .iter()
            .map(QueueProp::encoded_len)
            .sum::<usize>()
    }

    fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.queue_id);
        out.put_u32(self.port);
        out.put_u16(self.encoded_len() as u16);
        put_zeros(out, 6);
        for p in &self.properties {
            p.emit(out);
        }
    }

    fn read(r: &mut Reader) -> Result<PacketQueue, Error> {
        let queue_id = r.u32()?;
        let port = r.u32()?;
        let len = usize::from(r.u16()?);
        if len < 16 {
            return Err(Error::BadLength {
                ctx: Ctx::Queue,
                length: len,
            });
        }
        let mut b = r.sub(len - 10, Ctx::Queue)?;
        b.pad(6)?;
        Ok(PacketQueue {
            queue_id,
            port,
            properties: b.list(QueueProp::read)?,
        })
    }
}

/// QUEUE_GET_CONFIG_REPLY body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueGetConfigReply {
    /// Port queried.
    pub port: u32,
    /// Its queues.
    pub queues: Vec<PacketQueue>,
}

impl QueueGetConfigReply {
    pub(crate) fn encoded_len(&self) -> usize {
        8 + self
            .queues
            .iter()
            .map(PacketQueue::encoded_len)
            .sum::<usize>()
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u32(self.port);
        put_zeros(out, 4);
        for q in &self.queues {
            q.emit(out);
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, Error> {
        let port = r.u32()?;
        r.pad(4)?;
        Ok(QueueGetConfigReply {
            port,
            queues: r.list(PacketQueue::read)?,
        })
    }
}
