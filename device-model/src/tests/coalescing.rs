//! Coalesced bursts (`controller/guest_mem.rs`): consecutive bursts of a
//! transfer are moved together, yet every batch of events ends with its
//! bursts' bytes in memory and none of a later burst's; overlapping copies
//! keep burst-by-burst semantics; fills keep their pattern's phase.

use super::*;
use crate::descriptor::OP_FILL;

const BURST: usize = 256;

/// Per-burst reference: what a copy of `len` bytes from `src` to `dst`
/// leaves in `mem` when each 256-byte burst reads, then writes, in order.
fn per_burst_copy(mem: &mut [u8], src: usize, dst: usize, len: usize) {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(BURST);
        let chunk = mem[src + done..src + done + n].to_vec();
        mem[dst + done..dst + done + n].copy_from_slice(&chunk);
        done += n;
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Bytes of the bursts in the trace so far.
fn moved(rig: &Rig) -> usize {
    rig.bursts().iter().map(|b| b.bytes as usize).sum()
}

#[test]
fn each_batch_of_events_ends_with_exactly_its_bursts_in_memory() {
    let len = 16 * BURST + 100;
    let (src, dst) = (DATA, DATA + 0x10000);
    let data = pattern(len, 7);
    for budget in [1, 2, 5, 13] {
        let mut rig = Rig::new(DeviceConfig::default());
        rig.setup(0, 16);
        rig.fill(src, &data);
        rig.post(0, copy(src, dst, len as u32, 1));
        rig.ring(0);
        let mut batches = 0;
        loop {
            let p = rig.dev.run_slice(budget);
            batches += 1;
            let n = moved(&rig);
            let now = rig.read(dst, len);
            assert_eq!(now[..n], data[..n], "budget {budget}: bursts so far");
            assert!(
                now[n..].iter().all(|&b| b == 0),
                "budget {budget}: nothing of a later burst ({n} moved)"
            );
            if p.done {
                break;
            }
        }
        assert_eq!(moved(&rig), len, "budget {budget}");
        assert!(batches > 17 / budget as usize, "budget {budget}: {batches}");
    }
}

#[test]
fn overlapping_copies_read_what_earlier_bursts_wrote() {
    // Destination after the source (a forward smear), before it, and
    // overlapping by less than one burst.
    for (src_off, dst_off) in [(0usize, 100usize), (300, 0), (0, 200), (0, 1000)] {
        let len = 4 * BURST + 37;
        let base = DATA as usize;
        let mut rig = Rig::new(DeviceConfig::default());
        rig.setup(0, 16);
        let init = pattern(8192, 3);
        rig.fill(DATA, &init);
        rig.post(
            0,
            copy(
                (base + src_off) as u64,
                (base + dst_off) as u64,
                len as u32,
                1,
            ),
        );
        rig.ring(0);
        rig.dev.run_until_idle();
        let mut want = init.clone();
        per_burst_copy(&mut want, src_off, dst_off, len);
        assert_eq!(rig.read(DATA, 8192), want, "src +{src_off}, dst +{dst_off}");
    }
}

#[test]
fn a_fill_keeps_its_pattern_phase_across_coalesced_bursts() {
    let len = 9 * BURST + 3;
    let pat: u64 = 0x0807_0605_0403_0201;
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(
        0,
        Descriptor {
            src: pat,
            dst: DATA + 1,
            len: len as u32,
            op: OP_FILL,
            flags: FLAG_IOC,
            cookie: 1,
        },
    );
    rig.ring(0);
    rig.dev.run_until_idle();
    let got = rig.read(DATA, len + 2);
    let p = pat.to_le_bytes();
    assert_eq!(got[0], 0, "before the fill");
    assert_eq!(got[len + 1], 0, "after the fill");
    for (i, &b) in got[1..=len].iter().enumerate() {
        assert_eq!(b, p[i % 8], "byte {i}");
    }
}

#[test]
fn two_channels_interleaving_bursts_both_land_whole() {
    let len = 8 * BURST;
    let (a, b) = (pattern(len, 1), pattern(len, 2));
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.setup(1, 16);
    rig.fill(DATA, &a);
    rig.fill(DATA + 0x4000, &b);
    rig.post(0, copy(DATA, DATA + 0x10000, len as u32, 1));
    rig.post(1, copy(DATA + 0x4000, DATA + 0x14000, len as u32, 2));
    rig.ring(0);
    rig.ring(1);
    rig.dev.run_until_idle();
    let owners: Vec<u8> = rig.bursts().iter().map(|b| b.channel).collect();
    assert!(
        owners.windows(2).any(|w| w[0] != w[1]),
        "the bursts interleave: {owners:?}"
    );
    assert_eq!(rig.read(DATA + 0x10000, len), a);
    assert_eq!(rig.read(DATA + 0x14000, len), b);
}
