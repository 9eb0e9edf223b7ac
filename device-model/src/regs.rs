//! BAR0 register map: offsets, bits, completion statuses and channel error
//! codes, exactly as `docs/device-spec.md` §3 and §5 define them.
//!
//! Everything a driver sees by number lives here, so the spec and the code
//! can be compared line by line.

/// `ID` (RO): "DMAL".
pub const ID: u64 = 0x000;
/// `VERSION` (RO).
pub const VERSION: u64 = 0x004;
/// `CAPS` (RO).
pub const CAPS: u64 = 0x008;
/// `MAX_XFER` (RO).
pub const MAX_XFER: u64 = 0x00C;
/// `GCTRL` (W1S).
pub const GCTRL: u64 = 0x010;
/// `CLOCK_MHZ` (RO).
pub const CLOCK_MHZ: u64 = 0x014;
/// `INT_STATUS` (W1C).
pub const INT_STATUS: u64 = 0x018;
/// `INT_MASK` (RW).
pub const INT_MASK: u64 = 0x01C;
/// `CYCLE` (RO, 64-bit): low dword.
pub const CYCLE: u64 = 0x020;
/// `CYCLE`: high dword.
pub const CYCLE_HI: u64 = CYCLE + 4;
/// `TRACE_MARKER` (WO).
pub const TRACE_MARKER: u64 = 0x028;
/// `BAD_ACCESS` (RO).
pub const BAD_ACCESS: u64 = 0x02C;

/// Value of `ID`.
pub const ID_VALUE: u32 = 0x4C41_4D44;
/// Value of `VERSION`: 1.0.
pub const VERSION_VALUE: u32 = 0x0001_0000;
/// `CAPS` bits 7:0: the channel count.
pub const CAPS_CHANNELS_SHIFT: u32 = 0;
/// `CAPS` bits 15:8: log2 of the maximum ring size.
pub const CAPS_RING_LOG2_SHIFT: u32 = 8;
/// `CAPS` bit: the FENCE flag is honoured.
pub const CAPS_FENCE: u32 = 1 << 16;
/// `CAPS` bit: the tail shadow is supported.
pub const CAPS_SHADOW: u32 = 1 << 17;
/// `CAPS` bit: the FILL operation is supported.
pub const CAPS_FILL: u32 = 1 << 18;
/// `GCTRL` bit: device reset.
pub const GCTRL_RESET: u32 = 1 << 0;
/// `INT_STATUS`/`INT_MASK` bit of the error cause.
pub const INT_ERROR: u32 = 1 << 31;

/// First channel block.
pub const CHANNEL_BASE: u64 = 0x100;
/// Stride between channel blocks.
pub const CHANNEL_STRIDE: u64 = 0x80;

/// Channel `RING_BASE` (RW*, 64-bit): low dword.
pub const CH_RING_BASE: u64 = 0x00;
/// Channel `RING_BASE`: high dword.
pub const CH_RING_BASE_HI: u64 = CH_RING_BASE + 4;
/// Channel `RING_SIZE` (RW*).
pub const CH_RING_SIZE: u64 = 0x08;
/// Channel `HEAD` (RO).
pub const CH_HEAD: u64 = 0x0C;
/// Channel `TAIL` (RW, doorbell).
pub const CH_TAIL: u64 = 0x10;
/// Channel `CTRL` (RW).
pub const CH_CTRL: u64 = 0x14;
/// Channel `STATUS` (RO).
pub const CH_STATUS: u64 = 0x18;
/// Channel `ERROR_CODE` (RO).
pub const CH_ERROR_CODE: u64 = 0x1C;
/// Channel `COMP_BASE` (RW*, 64-bit): low dword.
pub const CH_COMP_BASE: u64 = 0x20;
/// Channel `COMP_BASE`: high dword.
pub const CH_COMP_BASE_HI: u64 = CH_COMP_BASE + 4;
/// Channel `COMP_HEAD` (RW).
pub const CH_COMP_HEAD: u64 = 0x28;
/// Channel `COMP_TAIL` (RO).
pub const CH_COMP_TAIL: u64 = 0x2C;
/// Channel `COALESCE_COUNT` (RW).
pub const CH_COALESCE_COUNT: u64 = 0x30;
/// `COALESCE_COUNT` bits 15:0 hold the count.
pub const COALESCE_COUNT_MASK: u32 = 0xFFFF;
/// Channel `COALESCE_TIME` (RW).
pub const CH_COALESCE_TIME: u64 = 0x34;
/// Channel `SHADOW_BASE` (RW*, 64-bit): low dword.
pub const CH_SHADOW_BASE: u64 = 0x38;
/// Channel `SHADOW_BASE`: high dword.
pub const CH_SHADOW_BASE_HI: u64 = CH_SHADOW_BASE + 4;
/// Channel `COMPLETED` (RO).
pub const CH_COMPLETED: u64 = 0x40;

/// `CTRL` bit: enable.
pub const CTRL_ENABLE: u32 = 1 << 0;
/// `CTRL` bit: abort (W1S).
pub const CTRL_ABORT: u32 = 1 << 1;
/// `CTRL` bit: channel reset (W1S).
pub const CTRL_RESET: u32 = 1 << 2;

/// `STATUS` bits 1:0: the state.
pub const STATUS_STATE_MASK: u32 = 0b11;
/// `STATUS` state: enabled, nothing to do.
pub const STATE_IDLE: u32 = 0;
/// `STATUS` state: enabled, working.
pub const STATE_BUSY: u32 = 1;
/// `STATUS` state: not enabled.
pub const STATE_HALTED: u32 = 2;
/// `STATUS` state: stopped on an error.
pub const STATE_ERROR: u32 = 3;
/// `STATUS` bit: waiting for completion-ring space.
pub const STATUS_COMP_FULL: u32 = 1 << 4;

/// Ring base alignment (descriptor and completion rings).
pub const RING_ALIGN: u64 = 64;
/// Shadow alignment.
pub const SHADOW_ALIGN: u64 = 8;

/// Completion status (spec §5.1).
pub mod status {
    /// All bytes moved.
    pub const OK: u16 = 0;
    /// Fewer bytes moved than asked.
    pub const SHORT: u16 = 1;
    /// Source range not in guest RAM.
    pub const ERR_SRC: u16 = 2;
    /// Destination range not in guest RAM.
    pub const ERR_DST: u16 = 3;
    /// Length 0 or over `MAX_XFER`.
    pub const ERR_LEN: u16 = 4;
    /// Unknown operation.
    pub const ERR_OP: u16 = 5;
    /// Transfer error (fault injection).
    pub const ERR_DMA: u16 = 6;
    /// Aborted in flight.
    pub const ABORTED: u16 = 7;
    /// Descriptor fetch failed.
    pub const ERR_FETCH: u16 = 8;
    /// The channel halted on this descriptor.
    pub const ERR_HALTED: u16 = 9;

    /// Whether `status` is an error (raises the error vector).
    pub fn is_error(status: u16) -> bool {
        !matches!(status, OK | SHORT | ABORTED)
    }
}

/// Channel error codes (spec §5.2).
pub mod error_code {
    /// A ring base or the shadow is misaligned.
    pub const RING_ALIGN: u32 = 1;
    /// `RING_SIZE` is not a power of two in range (or an index is past it).
    pub const RING_SIZE: u32 = 2;
    /// A ring or the shadow is not wholly in guest RAM.
    pub const RING_ADDR: u32 = 3;
    /// `TAIL` out of range.
    pub const TAIL_RANGE: u32 = 4;
    /// `COMP_HEAD` out of range.
    pub const COMP_HEAD_RANGE: u32 = 5;
    /// A descriptor read failed.
    pub const FETCH: u32 = 6;
    /// Fatal transfer error.
    pub const DMA_FATAL: u32 = 7;
    /// The engine halted.
    pub const HALT: u32 = 8;
    /// DMA needed without bus mastering.
    pub const NO_BUS_MASTER: u32 = 9;
    /// A completion record could not be written.
    pub const COMP_WRITE: u32 = 10;
}

/// The low 32 bits of `v`.
pub fn lo32(v: u64) -> u32 {
    let b = v.to_le_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The high 32 bits of `v`.
pub fn hi32(v: u64) -> u32 {
    lo32(v >> 32)
}

/// Where an offset falls in BAR0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar0Reg {
    /// A global register at this offset.
    Global(u64),
    /// Channel `.0`, register offset `.1` within its block.
    Channel(u8, u64),
    /// Nothing there.
    None,
}

/// Decodes a BAR0 offset for a device with `channels` channels.
///
/// ```
/// use device_model::regs::{decode_bar0, Bar0Reg};
/// assert_eq!(decode_bar0(0x1d0, 4), Bar0Reg::Channel(1, 0x50));
/// assert_eq!(decode_bar0(0x300, 4), Bar0Reg::None);
/// ```
pub fn decode_bar0(offset: u64, channels: u8) -> Bar0Reg {
    if offset < CHANNEL_BASE {
        return Bar0Reg::Global(offset);
    }
    let index = (offset - CHANNEL_BASE) / CHANNEL_STRIDE;
    match u8::try_from(index) {
        Ok(c) if c < channels => Bar0Reg::Channel(c, (offset - CHANNEL_BASE) % CHANNEL_STRIDE),
        _ => Bar0Reg::None,
    }
}

/// The BAR0 offset of channel `c`'s register `reg`.
pub fn channel_reg(c: u8, reg: u64) -> u64 {
    CHANNEL_BASE + CHANNEL_STRIDE * u64::from(c) + reg
}
