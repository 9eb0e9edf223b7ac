//! Intel MultiProcessor Specification 1.4 table at `MPTABLE_ADDR`, for guests
//! that look for one (the dmalab kernel takes its CPUs from the boot info).
//!
//! Floating pointer (16 bytes), immediately followed by the configuration
//! table: header, one processor entry per vCPU, buses PCI (0) and ISA (1),
//! the in-kernel IOAPIC, one I/O interrupt entry per IOAPIC pin (ISA IRQ *i*
//! to pin *i*), and the local ExtINT/NMI entries. Modelled on Firecracker's
//! `arch/x86_64/mptable.rs`. Both checksummed blocks sum to 0 (mod 256).

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::layout::{IOAPIC_ADDR, LAPIC_ADDR, MAX_VCPUS, MPTABLE_ADDR, MPTABLE_END};

const SPEC_REVISION: u8 = 4;
const FLOATING_POINTER_LEN: usize = 16;
const HEADER_LEN: usize = 44;

const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;

const CPU_ENABLED: u8 = 1 << 0;
const CPU_BOOTSTRAP: u8 = 1 << 1;
/// Family 6 signature and the FPU + APIC feature bits, as Firecracker.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = (1 << 0) | (1 << 9);
const LAPIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const IOAPIC_PINS: u8 = 24;
const IOAPIC_ENABLED: u8 = 1;

const INT_VECTORED: u8 = 0;
const INT_NMI: u8 = 1;
const INT_EXTINT: u8 = 3;
/// Polarity and trigger mode conform to the bus.
const INT_FLAGS_CONFORM: u16 = 0;

const BUS_PCI: u8 = 0;
const BUS_ISA: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("an MP table holds at most {MAX_VCPUS} processors, not {0}")]
    TooManyCpus(u8),
    #[error("the MP table ({0} bytes) does not fit below 0xA0000")]
    TooLarge(usize),
    #[error("cannot write the MP table to guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// The whole table (floating pointer first) as placed at `MPTABLE_ADDR`.
pub fn build(cpu_count: u8) -> Result<Vec<u8>, Error> {
    if cpu_count == 0 || cpu_count > MAX_VCPUS {
        return Err(Error::TooManyCpus(cpu_count));
    }
    let config_addr = MPTABLE_ADDR + FLOATING_POINTER_LEN as u64;
    let ioapic_id = cpu_count;

    let mut entries = Vec::new();
    for cpu in 0..cpu_count {
        let flags = CPU_ENABLED | if cpu == 0 { CPU_BOOTSTRAP } else { 0 };
        entries.extend_from_slice(&[ENTRY_PROCESSOR, cpu, LAPIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
    }
    entries.extend_from_slice(&[ENTRY_BUS, BUS_PCI]);
    entries.extend_from_slice(b"PCI   ");
    entries.extend_from_slice(&[ENTRY_BUS, BUS_ISA]);
    entries.extend_from_slice(b"ISA   ");
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, IOAPIC_ENABLED]);
    entries.extend_from_slice(&low32(IOAPIC_ADDR).to_le_bytes());
    for pin in 0..IOAPIC_PINS {
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INT_VECTORED]);
        entries.extend_from_slice(&INT_FLAGS_CONFORM.to_le_bytes());
        entries.extend_from_slice(&[BUS_ISA, pin, ioapic_id, pin]);
    }
    for (kind, lapic, lint) in [(INT_EXTINT, 0, 0), (INT_NMI, 0xff, 1)] {
        entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, kind]);
        entries.extend_from_slice(&INT_FLAGS_CONFORM.to_le_bytes());
        entries.extend_from_slice(&[BUS_ISA, 0, lapic, lint]);
    }
    let entry_count = u16::from(cpu_count) + 2 + 1 + u16::from(IOAPIC_PINS) + 2;

    let table_len = HEADER_LEN + entries.len();
    let total = FLOATING_POINTER_LEN + table_len;
    if MPTABLE_ADDR + total as u64 > MPTABLE_END {
        return Err(Error::TooLarge(total));
    }

    let mut table = Vec::with_capacity(total);
    // Floating pointer.
    table.extend_from_slice(b"_MP_");
    table.extend_from_slice(&low32(config_addr).to_le_bytes());
    table.extend_from_slice(&[1, SPEC_REVISION, 0, 0, 0, 0, 0, 0]);
    table[10] = checksum(&table[..FLOATING_POINTER_LEN]);
    // Configuration table header.
    let header = table.len();
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&u16::try_from(table_len).unwrap_or(u16::MAX).to_le_bytes());
    table.extend_from_slice(&[SPEC_REVISION, 0]);
    table.extend_from_slice(b"DMALAB  ");
    table.extend_from_slice(b"DMALAB-VMM  ");
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    table.extend_from_slice(&entry_count.to_le_bytes());
    table.extend_from_slice(&low32(LAPIC_ADDR).to_le_bytes());
    table.extend_from_slice(&[0, 0, 0, 0]); // extended table length, checksum, reserved
    table.extend_from_slice(&entries);
    table[header + 7] = checksum(&table[header..]);
    Ok(table)
}

/// Builds the table and writes it at `MPTABLE_ADDR`.
pub fn write<M: GuestMemory>(memory: &M, cpu_count: u8) -> Result<(), Error> {
    let table = build(cpu_count)?;
    memory
        .write_slice(&table, GuestAddress(MPTABLE_ADDR))
        .map_err(Error::Write)
}

/// A 32-bit MP-table address field (all our addresses are below 4 GiB).
fn low32(addr: u64) -> u32 {
    u32::try_from(addr).unwrap_or(u32::MAX)
}

/// The byte that makes `bytes` (with that byte still 0) sum to 0 mod 256.
fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn both_checksums_are_zero() {
        for cpus in [1, 2, 16] {
            let t = build(cpus).unwrap();
            assert_eq!(&t[0..4], b"_MP_");
            assert_eq!(sum(&t[..16]), 0, "floating pointer, {cpus} cpus");
            assert_eq!(&t[16..20], b"PCMP");
            let len = usize::from(u16::from_le_bytes([t[20], t[21]]));
            assert_eq!(16 + len, t.len());
            assert_eq!(sum(&t[16..16 + len]), 0, "config table, {cpus} cpus");
            assert_ne!(t[10], 0, "the checksum byte is really computed");
        }
    }

    #[test]
    fn pointer_and_entries_are_consistent() {
        let t = build(2).unwrap();
        let physptr = u32::from_le_bytes(t[4..8].try_into().unwrap());
        assert_eq!(u64::from(physptr), MPTABLE_ADDR + 16);
        assert_eq!((t[8], t[9]), (1, 4), "length in paragraphs, spec 1.4");
        let count = u16::from_le_bytes([t[16 + 34], t[16 + 35]]);
        assert_eq!(count, 2 + 2 + 1 + 24 + 2);
        let lapic = u32::from_le_bytes(t[16 + 36..16 + 40].try_into().unwrap());
        assert_eq!(u64::from(lapic), LAPIC_ADDR);
        // First processor is the enabled BSP with APIC ID 0, second an AP.
        let cpu0 = &t[60..80];
        let cpu1 = &t[80..100];
        assert_eq!((cpu0[0], cpu0[1], cpu0[3]), (ENTRY_PROCESSOR, 0, 3));
        assert_eq!((cpu1[0], cpu1[1], cpu1[3]), (ENTRY_PROCESSOR, 1, 1));
        // The IOAPIC entry follows the two bus entries.
        let ioapic = &t[116..124];
        assert_eq!((ioapic[0], ioapic[1]), (ENTRY_IOAPIC, 2));
        assert_eq!(
            u32::from_le_bytes(ioapic[4..8].try_into().unwrap()),
            0xFEC0_0000
        );
    }

    #[test]
    fn sixteen_cpus_fit_and_seventeen_do_not() {
        let t = build(16).unwrap();
        assert!(MPTABLE_ADDR + t.len() as u64 <= MPTABLE_END);
        assert!(matches!(build(17), Err(Error::TooManyCpus(17))));
        assert!(matches!(build(0), Err(Error::TooManyCpus(0))));
    }
}
