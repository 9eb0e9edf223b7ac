//! Descriptor and completion-record layouts (spec §4.1, §4.2).
//!
//! Both are 32 bytes, little-endian, decoded from / encoded to byte arrays
//! so no layout depends on the host's struct packing.

/// Size of a descriptor and of a completion record, in bytes.
pub const DESCRIPTOR_SIZE: u64 = 32;

/// Descriptor operation: copy `len` bytes from `src` to `dst`.
pub const OP_COPY: u8 = 0;
/// Descriptor operation: fill `len` bytes at `dst` with the pattern in `src`.
pub const OP_FILL: u8 = 1;
/// Descriptor flag: interrupt on completion.
pub const FLAG_IOC: u8 = 1 << 0;
/// Descriptor flag: fence (spec §4.1).
pub const FLAG_FENCE: u8 = 1 << 1;
/// Completion flag: the phase bit.
pub const COMP_PHASE: u8 = 1 << 0;

/// One descriptor as the guest wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// Source address (COPY) or the 8-byte pattern (FILL).
    pub src: u64,
    /// Destination address.
    pub dst: u64,
    /// Length in bytes.
    pub len: u32,
    /// `OP_COPY` or `OP_FILL`.
    pub op: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Returned unchanged in the completion record.
    pub cookie: u64,
}

fn le64(b: &[u8; 32], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Descriptor {
    /// Decodes 32 bytes.
    ///
    /// ```
    /// use device_model::descriptor::{Descriptor, OP_FILL, FLAG_IOC};
    /// let d = Descriptor { src: 1, dst: 2, len: 3, op: OP_FILL, flags: FLAG_IOC, cookie: 9 };
    /// assert_eq!(Descriptor::from_bytes(&d.to_bytes()), d);
    /// ```
    pub fn from_bytes(b: &[u8; 32]) -> Descriptor {
        Descriptor {
            src: le64(b, 0),
            dst: le64(b, 8),
            len: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
            op: b[20],
            flags: b[21],
            cookie: le64(b, 24),
        }
    }

    /// Encodes to 32 bytes (reserved bytes zero).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.src.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20] = self.op;
        b[21] = self.flags;
        b[24..32].copy_from_slice(&self.cookie.to_le_bytes());
        b
    }

    /// Whether the descriptor asks for a completion interrupt.
    pub fn ioc(&self) -> bool {
        self.flags & FLAG_IOC != 0
    }

    /// Whether the descriptor is fenced.
    pub fn fence(&self) -> bool {
        self.flags & FLAG_FENCE != 0
    }
}

/// One completion record as the device writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completion {
    /// The descriptor's cookie.
    pub cookie: u64,
    /// Bytes moved.
    pub bytes_done: u32,
    /// A `regs::status` value.
    pub status: u16,
    /// `COMP_PHASE` bit.
    pub flags: u8,
    /// The channel.
    pub channel: u8,
    /// Device cycle of the write-back.
    pub timestamp: u64,
    /// Low 32 bits of the device-wide sequence number.
    pub seq: u32,
    /// The descriptor's ring index.
    pub index: u16,
}

impl Completion {
    /// Encodes to 32 bytes.
    ///
    /// ```
    /// use device_model::descriptor::Completion;
    /// let c = Completion { cookie: 7, bytes_done: 64, status: 0, flags: 1, channel: 2,
    ///                      timestamp: 1000, seq: 5, index: 4 };
    /// assert_eq!(Completion::from_bytes(&c.to_bytes()), c);
    /// ```
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.cookie.to_le_bytes());
        b[8..12].copy_from_slice(&self.bytes_done.to_le_bytes());
        b[12..14].copy_from_slice(&self.status.to_le_bytes());
        b[14] = self.flags;
        b[15] = self.channel;
        b[16..24].copy_from_slice(&self.timestamp.to_le_bytes());
        b[24..28].copy_from_slice(&self.seq.to_le_bytes());
        b[28..30].copy_from_slice(&self.index.to_le_bytes());
        b
    }

    /// Decodes 32 bytes (for drivers and tests).
    pub fn from_bytes(b: &[u8; 32]) -> Completion {
        Completion {
            cookie: le64(b, 0),
            bytes_done: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            status: u16::from_le_bytes([b[12], b[13]]),
            flags: b[14],
            channel: b[15],
            timestamp: le64(b, 16),
            seq: u32::from_le_bytes([b[24], b[25], b[26], b[27]]),
            index: u16::from_le_bytes([b[28], b[29]]),
        }
    }

    /// The phase bit.
    pub fn phase(&self) -> bool {
        self.flags & COMP_PHASE != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_layout_is_fixed() {
        let d = Descriptor {
            src: 0x1122,
            dst: 0x3344,
            len: 0x55,
            op: 1,
            flags: 3,
            cookie: 0x66,
        };
        let b = d.to_bytes();
        assert_eq!(b[0], 0x22);
        assert_eq!(b[8], 0x44);
        assert_eq!(b[16], 0x55);
        assert_eq!((b[20], b[21]), (1, 3));
        assert_eq!(b[24], 0x66);
        assert!(d.ioc() && d.fence());
    }

    #[test]
    fn completion_layout_is_fixed() {
        let c = Completion {
            cookie: 1,
            bytes_done: 2,
            status: 3,
            flags: 1,
            channel: 4,
            timestamp: 5,
            seq: 6,
            index: 7,
        };
        let b = c.to_bytes();
        assert_eq!(
            (b[0], b[8], b[12], b[14], b[15], b[16], b[24], b[28]),
            (1, 2, 3, 1, 4, 5, 6, 7)
        );
        assert!(c.phase());
    }
}
