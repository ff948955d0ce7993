//! METER_MOD and the meter bands it shares with the meter-config multipart reply.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codec::{put_zeros, ser, Reader};
use crate::error::{enum_with_unknown, Ctx, Error};

enum_with_unknown! {
    /// `OFPMC_*`.
    pub enum MeterModCommand(u16) {
        /// New meter.
        Add = 0,
        /// Modify specified meter.
        Modify = 1,
        /// Delete specified meter.
        Delete = 2,
    }
}

/// `OFPMF_KBPS`: rate in kb/s.
pub const OFPMF_KBPS: u16 = 1 << 0;
/// `OFPMF_PKTPS`: rate in packets/s.
pub const OFPMF_PKTPS: u16 = 1 << 1;
/// `OFPMF_BURST`: do burst size.
pub const OFPMF_BURST: u16 = 1 << 2;
/// `OFPMF_STATS`: collect statistics.
pub const OFPMF_STATS: u16 = 1 << 3;

/// One meter band (`ofp_meter_band_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MeterBand {
    /// OFPMBT_DROP.
    Drop {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
    },
    /// OFPMBT_DSCP_REMARK.
    DscpRemark {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Number of drop-precedence levels to add.
        prec_level: u8,
    },
    /// OFPMBT_EXPERIMENTER; `data` is what follows the experimenter id.
    Experimenter {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter-defined bytes.
        #[serde(serialize_with = "ser::hex")]
        data: Bytes,
    },
}

impl MeterBand {
    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            MeterBand::Experimenter { data, .. } => 16 + data.len(),
            _ => 16,
        }
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        let len = self.encoded_len() as u16;
        match self {
            MeterBand::Drop { rate, burst_size } => {
                out.put_u16(1);
                out.put_u16(len);
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                put_zeros(out, 4);
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                out.put_u16(2);
                out.put_u16(len);
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                out.put_u8(*prec_level);
                put_zeros(out, 3);
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => {
                out.put_u16(0xffff);
                out.put_u16(len);
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                out.put_u32(*experimenter);
                out.put_slice(data);
            }
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<MeterBand, Error> {
        let typ = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 16 {
            return Err(Error::BadLength {
                ctx: Ctx::Meter,
                length: len,
            });
        }
        let mut b = r.sub(len - 4, Ctx::Meter)?;
        let rate = b.u32()?;
        let burst_size = b.u32()?;
        let band = match typ {
            1 => {
                b.pad(4)?;
                MeterBand::Drop { rate, burst_size }
            }
            2 => {
                let prec_level = b.u8()?;
                b.pad(3)?;
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                }
            }
            0xffff => MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter: b.u32()?,
                data: b.rest(),
            },
            _ => return Err(Error::BadMeterBand { typ }),
        };
        b.finish()?;
        Ok(band)
    }
}

pub(crate) fn bands_len(b: &[MeterBand]) -> usize {
    b.iter().map(MeterBand::encoded_len).sum()
}

/// METER_MOD body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterMod {
    /// Command.
    pub command: MeterModCommand,
    /// `OFPMF_*`.
    pub flags: u16,
    /// Meter id.
    pub meter_id: u32,
    /// Bands.
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    pub(crate) fn encoded_len(&self) -> usize {
        8 + bands_len(&self.bands)
    }

    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u16(self.command.into());
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        for b in &self.bands {
            b.emit(out);
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<MeterMod, Error> {
        let command = r.u16()?.into();
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        let bands = r.list(MeterBand::read)?;
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
    }
}
