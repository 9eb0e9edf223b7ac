// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The DMA driver's test application: a Windows-style program that opens
 * the channel devices ("dmadrv<c>") and keeps overlapped DeviceIoControl
 * requests in flight on them, as a test tool with several requester
 * threads would (here: `requesters` handles, each with `depth` requests
 * outstanding, served round robin from one thread).
 *
 * Each request owns a slot of the data region. COPY: the source half is
 * filled with a seeded pattern, the destination half (with 16 guard
 * bytes either side) with a sentinel; after success the destination must
 * equal the source and the guards the sentinel. FILL: the destination
 * (guards around it) must be the 8-byte pattern, repeated. All of this
 * runs at CPL3, natively: the kernel never touches the data.
 *
 * Sizes are random (seeded): every request 1 ... max_bytes, with every
 * fourth one small (1 ... 4 KiB) and the first one max_bytes, so a run
 * always has requests larger than one transfer. Offsets are random in
 * 0 ... 63 (unaligned on purpose).
 *
 * With cancel_every = n, every n-th request still pending after its
 * DeviceIoControl is cancelled at once (CancelIoEx): queued behind the
 * channel's StartIo it ends STATUS_CANCELLED, already in the device it
 * finishes normally.
 *
 * A request ends exactly once: its wait returns a final status, the
 * OVERLAPPED then holds the same status, and it is counted once. A wait
 * that times out (wait_ms) counts the request as lost and ends the run.
 */
#include "dmadrv/dmadrv_ioctl.h"
#include "user/dma_io.h"
#include "user/ulib.h"

#define STATUS_SUCCESS 0
#define STATUS_TIMEOUT 0x102
#define STATUS_PENDING 0x103
#define STATUS_CANCELLED ((int64_t)(int32_t)0xC0000120)
#define GUARD 16
#define SENTINEL 0xa5
#define MAX_OFF 64

struct dma_user_params u_dma_params;
struct dma_user_result u_dma_result;

struct slot {
	struct u_overlapped ov;
	struct dmadrv_xfer x;
	int64_t handle;
	uint8_t *buf;
	uint64_t cap;
	uint64_t number; /* 1-based request number */
	uint64_t seed;
	uint32_t code;
	int busy;
};

static struct slot slots[DMA_IO_MAX_INFLIGHT];
static int64_t handles[DMA_IO_MAX_INFLIGHT];
static uint64_t rng;

static uint64_t next_rand(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint8_t pattern_byte(uint64_t seed, uint64_t i)
{
	return (uint8_t)(((seed + (i >> 3)) * 0x9e3779b97f4a7c15ull) >>
			 (8 * (i & 7)));
}

static void fill_bytes(uint8_t *p, uint64_t n, uint8_t v)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		p[i] = v;
}

static int guards_ok(const uint8_t *p, uint64_t len)
{
	uint64_t i;

	for (i = 1; i <= GUARD; i++)
		if (p[-(int64_t)i] != SENTINEL || p[len + i - 1] != SENTINEL)
			return 0;
	return 1;
}

static void put_u64(char *s, uint64_t *n, uint64_t v, int hex)
{
	char t[24];
	int k = 0;

	do {
		unsigned int d = (unsigned int)(v % (hex ? 16 : 10));

		t[k++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= hex ? 16 : 10;
	} while (v);
	if (hex) {
		s[(*n)++] = '0';
		s[(*n)++] = 'x';
	}
	while (k)
		s[(*n)++] = t[--k];
}

static void put_str(char *s, uint64_t *n, const char *t)
{
	while (*t)
		s[(*n)++] = *t++;
}

static void say(const struct slot *sl, int64_t st, int data_ok)
{
	char line[160];
	uint64_t n = 0;

	put_str(line, &n, "dma-io: request ");
	put_u64(line, &n, sl->number, 0);
	put_str(line, &n, sl->code == IOCTL_DMADRV_COPY ? " copy " : " fill ");
	put_u64(line, &n, sl->x.len, 0);
	put_str(line, &n, " bytes on channel ");
	put_u64(line, &n, (uint64_t)(sl - slots) / u_dma_params.depth %
				  u_dma_params.channels, 0);
	put_str(line, &n, ": status ");
	put_u64(line, &n, (uint64_t)(uint32_t)st, 1);
	put_str(line, &n, st == STATUS_SUCCESS ? (data_ok ? ", data verified\n" :
							   ", DATA WRONG\n") :
						 "\n");
	u_write(line, n);
}

static uint64_t pick_len(uint64_t number)
{
	const struct dma_user_params *p = &u_dma_params;

	if (number == 1)
		return p->max_bytes;
	if (number % 4 == 0)
		return 1 + next_rand() % (p->max_bytes < 4096 ? p->max_bytes : 4096);
	return 1 + next_rand() % p->max_bytes;
}

static int64_t submit(struct slot *sl, uint64_t number)
{
	const struct dma_user_params *p = &u_dma_params;
	struct u_ioctl_args a = { 0 };
	uint64_t len = pick_len(number), i, half = sl->cap / 2;
	int copy = p->ops == DMA_IO_COPY ||
		   (p->ops == DMA_IO_MIXED && (next_rand() & 1));
	uint8_t *dst;
	int64_t st;

	sl->number = number;
	sl->seed = next_rand();
	sl->code = copy ? IOCTL_DMADRV_COPY : IOCTL_DMADRV_FILL;
	sl->x.len = len;
	sl->x.tag = number;
	sl->x.src_off = GUARD + next_rand() % MAX_OFF;
	sl->x.dst_off = half + GUARD + next_rand() % MAX_OFF;
	sl->x.pattern = sl->seed;
	dst = sl->buf + sl->x.dst_off;
	fill_bytes(dst - GUARD, len + 2 * GUARD, SENTINEL);
	if (copy)
		for (i = 0; i < len; i++)
			sl->buf[sl->x.src_off + i] = pattern_byte(sl->seed, i);
	if (len > p->max_xfer)
		u_dma_result.multi_transfer++;
	sl->ov.Internal = 0;
	sl->ov.InternalHigh = 0;
	a.handle = (uint64_t)sl->handle;
	a.code = sl->code;
	a.in = (uint64_t)&sl->x;
	a.in_len = sizeof(sl->x);
	a.out = (uint64_t)sl->buf;
	a.out_len = (uint32_t)sl->cap;
	a.overlapped = (uint64_t)&sl->ov;
	st = u_device_io_control(&a);
	u_dma_result.submitted++;
	sl->busy = 1;
	return st;
}

static int data_ok(const struct slot *sl)
{
	const uint8_t *dst = sl->buf + sl->x.dst_off;
	uint64_t i;

	if (!guards_ok(dst, sl->x.len))
		return 0;
	if (sl->code == IOCTL_DMADRV_COPY) {
		for (i = 0; i < sl->x.len; i++)
			if (dst[i] != pattern_byte(sl->seed, i))
				return 0;
	} else {
		for (i = 0; i < sl->x.len; i++)
			if (dst[i] != (uint8_t)(sl->x.pattern >> (8 * (i & 7))))
				return 0;
	}
	return 1;
}

/* The request in sl ended with st (from its wait or DeviceIoControl). */
static void account(struct slot *sl, int64_t st)
{
	struct dma_user_result *r = &u_dma_result;
	int ok = 1;

	sl->busy = 0;
	if (sl->ov.Internal != (uint64_t)st)
		r->bad_overlapped++;
	if (st == STATUS_SUCCESS) {
		ok = data_ok(sl);
		if (!ok)
			r->bad_data++;
		else if (sl->ov.InternalHigh != sl->x.len)
			r->bad_info++;
		else
			r->ok++;
		r->bytes += sl->x.len;
	} else if (st == STATUS_CANCELLED) {
		r->failed++;
		r->cancelled++;
	} else {
		r->failed++;
		if (!r->first_fail_status) {
			r->first_fail_status = (uint32_t)st;
			r->first_fail_request = sl->number;
		}
	}
	if (u_dma_params.verbose)
		say(sl, st, ok);
}

int64_t u_dma_io_main(uint64_t arg)
{
	const struct dma_user_params *p = &u_dma_params;
	struct dma_user_result *r = &u_dma_result;
	uint32_t nslots = p->requesters * p->depth, i, inflight = 0, turn = 0;
	uint64_t next = 1, t0, cap;
	char name[] = DMADRV_DEVICE_PREFIX "0";

	(void)arg;
	rng = p->seed * 2 + 1;
	if (!nslots || nslots > DMA_IO_MAX_INFLIGHT || !p->channels)
		return 1;
	cap = (p->size / nslots) & ~63ull;
	for (i = 0; i < p->requesters; i++) {
		name[sizeof(name) - 2] = (char)('0' + i % p->channels);
		handles[i] = u_open_device(name, sizeof(name) - 1);
		if (handles[i] <= 0) {
			r->open_failed++;
			return 1;
		}
	}
	for (i = 0; i < nslots; i++) {
		slots[i].handle = handles[i / p->depth];
		slots[i].buf = (uint8_t *)(p->base + i * cap);
		slots[i].cap = cap;
	}
	t0 = u_rdtsc();
	while (next <= p->irps || inflight) {
		/* Keep every slot busy while requests are left. */
		for (i = 0; i < nslots && next <= p->irps; i++) {
			int64_t st;

			if (slots[i].busy)
				continue;
			st = submit(&slots[i], next++);
			if (st == STATUS_PENDING) {
				inflight++;
				if (inflight > r->max_inflight)
					r->max_inflight = inflight;
				if (p->cancel_every &&
				    slots[i].number % p->cancel_every == 0) {
					r->cancel_calls++;
					if (u_cancel_io(slots[i].handle,
							&slots[i].ov) == STATUS_SUCCESS)
						r->cancel_hits++;
				}
			} else {
				account(&slots[i], st); /* ended in the call */
			}
		}
		/* Wait for one request, round robin over the slots, so the
		 * others stay in flight and the queues stay deep. */
		for (i = 0; i < nslots && inflight; i++) {
			struct slot *sl = &slots[(turn + i) % nslots];
			int64_t st;

			if (!sl->busy)
				continue;
			turn = (turn + i + 1) % nslots;
			st = u_wait_overlapped(&sl->ov, p->wait_ms);
			if (st == STATUS_TIMEOUT) {
				r->lost++;
				r->cycles = u_rdtsc() - t0;
				return 0;
			}
			inflight--;
			account(sl, st);
			break;
		}
	}
	r->cycles = u_rdtsc() - t0;
	for (i = 0; i < p->requesters; i++)
		u_close(handles[i]);
	return 0;
}
