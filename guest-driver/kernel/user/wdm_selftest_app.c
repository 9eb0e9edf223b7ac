// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The wdm-selftest user program: a Windows-style test application that
 * opens the loopback test driver and calls DeviceIoControl,
 * synchronously and overlapped, checking what comes back. Each check's
 * verdict and figures go to u_wdm_result; the kernel side prints them.
 */
#include "user/ulib.h"
#include "user/wdm_selftest.h"
#include "wdm/testdrv/testdrv_ioctl.h"

#define STATUS_SUCCESS 0
#define STATUS_TIMEOUT 0x102
#define STATUS_PENDING 0x103
#define STATUS_ACCESS_VIOLATION ((int64_t)(int32_t)0xC0000005)
#define STATUS_INVALID_PARAMETER ((int64_t)(int32_t)0xC000000D)
#define STATUS_CANCELLED ((int64_t)(int32_t)0xC0000120)
#define STATUS_IO_TIMEOUT ((int64_t)(int32_t)0xC00000B5)
#define DEPTH 4

struct u_wdm_result u_wdm_result;

static void set(enum u_wdm_check c, int ok, uint64_t a, uint64_t b)
{
	u_wdm_result.done[c] = 1;
	u_wdm_result.ok[c] = ok ? 1 : 0;
	u_wdm_result.a[c] = a;
	u_wdm_result.b[c] = b;
}

static void fill(struct testdrv_req *r, uint32_t delay, uint32_t flags,
		 uint8_t seed)
{
	uint32_t i;

	r->delay_ms = delay;
	r->flags = flags;
	r->len = TESTDRV_MAX_DATA;
	r->seq = 0;
	for (i = 0; i < TESTDRV_MAX_DATA; i++)
		r->data[i] = (uint8_t)(seed + i * 7);
}

static int inverted(const uint8_t *out, const struct testdrv_req *in)
{
	uint32_t i;

	for (i = 0; i < in->len; i++)
		if ((out[i] ^ in->data[i]) != 0xff)
			return 0;
	return 1;
}

static int64_t submit(int64_t h, struct testdrv_req *in, struct testdrv_req *out,
		      struct u_overlapped *ov)
{
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_LOOPBACK,
		.in_len = sizeof(*in),
		.in = (uint64_t)in,
		.out = (uint64_t)out,
		.out_len = sizeof(*out),
		.overlapped = (uint64_t)ov,
	};

	return u_device_io_control(&a);
}

static void check_sync(int64_t h)
{
	static struct testdrv_req in, out;
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_LOOPBACK,
		.in_len = sizeof(in),
		.in = (uint64_t)&in,
		.out = (uint64_t)&out,
		.out_len = sizeof(out),
	};
	int64_t st;

	fill(&in, 0, 0, 1);
	st = u_device_io_control(&a);
	set(U_WDM_SYNC, st == STATUS_SUCCESS && a.bytes_returned == sizeof(out) &&
		out.seq >= 1 && inverted(out.data, &in),
	    (uint64_t)st, a.bytes_returned);
}

static void check_direct(int64_t h)
{
	static struct testdrv_req in;
	static uint8_t buf[TESTDRV_MAX_DATA];
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_DIRECT,
		.in_len = sizeof(in),
		.in = (uint64_t)&in,
		.out = (uint64_t)buf,
		.out_len = sizeof(buf),
	};
	int64_t st;

	fill(&in, 1, 0, 99);
	st = u_device_io_control(&a);
	set(U_WDM_DIRECT, st == STATUS_SUCCESS && a.bytes_returned == sizeof(buf) &&
		inverted(buf, &in),
	    (uint64_t)st, a.bytes_returned);
}

#define LATENCY_CALLS 8

/* Synchronous loopbacks with no device latency: system call, IRP,
 * dispatch, StartIo, self-IPI, ISR, DPC, completion, copy back. */
static void check_latency(int64_t h)
{
	static struct testdrv_req in, out;
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_LOOPBACK,
		.in_len = sizeof(in),
		.in = (uint64_t)&in,
		.out = (uint64_t)&out,
		.out_len = sizeof(out),
	};
	uint64_t khz = u_tsc_khz(), t0, dt, i, good = 0;

	fill(&in, 0, 0, 7);
	in.len = 8;
	t0 = u_rdtsc();
	for (i = 0; i < LATENCY_CALLS; i++)
		if (u_device_io_control(&a) == STATUS_SUCCESS)
			good++;
	dt = u_rdtsc() - t0;
	set(U_WDM_LATENCY, good == LATENCY_CALLS && khz,
	    khz ? dt * 1000 / khz / LATENCY_CALLS : 0, good);
}

static void check_bad_pointer(int64_t h)
{
	static struct testdrv_req out;
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_LOOPBACK,
		.in_len = sizeof(out),
		.in = 0x100000, /* the kernel's ISR stubs */
		.out = (uint64_t)&out,
		.out_len = sizeof(out),
	};
	int64_t st = u_device_io_control(&a);

	set(U_WDM_BAD_POINTER, st == STATUS_ACCESS_VIOLATION, (uint64_t)st, 0);
}

/* DEPTH overlapped requests, 20 ms of device latency each (so none has
 * finished when the last is submitted, even on a loaded host); the
 * third is cancelled while queued. */
static void check_overlapped(int64_t h)
{
	static struct testdrv_req in[DEPTH], out[DEPTH];
	static struct u_overlapped ov[DEPTH];
	int64_t st[DEPTH], wst[DEPTH], cst;
	uint64_t pending = 0, i;
	int ok = 1;

	for (i = 0; i < DEPTH; i++) {
		fill(&in[i], 20, 0, (uint8_t)(10 * i));
		st[i] = submit(h, &in[i], &out[i], &ov[i]);
	}
	for (i = 0; i < DEPTH; i++)
		if (st[i] == STATUS_PENDING &&
		    ov[i].Internal == (uint64_t)STATUS_PENDING)
			pending++;
	cst = u_cancel_io(h, &ov[2]);
	for (i = 0; i < DEPTH; i++)
		wst[i] = u_wait_overlapped(&ov[i], 2000);
	set(U_WDM_OVERLAPPED, pending == DEPTH, pending, DEPTH);
	set(U_WDM_CANCEL, cst == STATUS_SUCCESS && wst[2] == STATUS_CANCELLED &&
		ov[2].Internal == (uint64_t)STATUS_CANCELLED,
	    (uint64_t)cst, (uint64_t)wst[2]);
	for (i = 0; i < DEPTH; i++) {
		if (i == 2)
			continue;
		if (wst[i] != STATUS_SUCCESS || !inverted(out[i].data, &in[i]) ||
		    ov[i].InternalHigh != sizeof(out[i]))
			ok = 0;
	}
	set(U_WDM_ORDER, ok && out[1].seq == out[0].seq + 1 &&
		out[3].seq == out[1].seq + 1,
	    out[0].seq * 1000000 + out[1].seq * 1000 + out[3].seq,
	    (uint64_t)wst[0]);
}

static void check_wait_timeout(int64_t h)
{
	static struct testdrv_req in, out;
	static struct u_overlapped ov;
	uint64_t t0, t1;
	int64_t w1, w2;

	fill(&in, 30, 0, 0);
	submit(h, &in, &out, &ov);
	t0 = u_get_ticks();
	w1 = u_wait_overlapped(&ov, 5);
	t1 = u_get_ticks();
	w2 = u_wait_overlapped(&ov, U_WDM_INFINITE);
	set(U_WDM_WAIT_TIMEOUT, w1 == STATUS_TIMEOUT && w2 == STATUS_SUCCESS &&
		t1 - t0 >= 4,
	    t1 - t0, (uint64_t)w2);
}

/* A request the driver completes in its dispatch routine (here: input
 * too short, STATUS_INVALID_PARAMETER) completes inside an overlapped
 * DeviceIoControl: the call returns the final status, the OVERLAPPED is
 * filled, a later wait reads it. (A request that goes to the device may
 * complete either way, depending on when its interrupt is delivered.) */
static void check_immediate(int64_t h)
{
	static struct testdrv_req in, out;
	static struct u_overlapped ov;
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_LOOPBACK,
		.in_len = 4,
		.in = (uint64_t)&in,
		.out = (uint64_t)&out,
		.out_len = sizeof(out),
		.overlapped = (uint64_t)&ov,
	};
	int64_t st, w;

	st = u_device_io_control(&a);
	w = u_wait_overlapped(&ov, 0);
	set(U_WDM_IMMEDIATE, st == STATUS_INVALID_PARAMETER &&
		w == STATUS_INVALID_PARAMETER &&
		ov.Internal == (uint64_t)STATUS_INVALID_PARAMETER &&
		ov.InternalHigh == 0,
	    (uint64_t)st, (uint64_t)w);
}

static void check_watchdog(int64_t h)
{
	static struct testdrv_req in, out;
	struct u_ioctl_args a = {
		.handle = (uint64_t)h,
		.code = IOCTL_TESTDRV_LOOPBACK,
		.in_len = sizeof(in),
		.in = (uint64_t)&in,
		.out = (uint64_t)&out,
		.out_len = sizeof(out),
	};
	uint64_t t0 = u_get_ticks();
	int64_t st;

	fill(&in, 0, TESTDRV_F_NO_INTERRUPT, 5);
	st = u_device_io_control(&a);
	set(U_WDM_WATCHDOG, st == STATUS_IO_TIMEOUT &&
		u_get_ticks() - t0 >= TESTDRV_WATCHDOG_MS - 1,
	    (uint64_t)st, u_get_ticks() - t0);
}

static void check_close(int64_t h)
{
	static struct testdrv_req in[2], out[2];
	static struct u_overlapped ov[2];
	int64_t cl;

	fill(&in[0], 20, 0, 1);
	fill(&in[1], 20, 0, 2);
	submit(h, &in[0], &out[0], &ov[0]);
	submit(h, &in[1], &out[1], &ov[1]);
	cl = u_close(h);
	/* The first was in the device (finishes), the second queued
	 * (cancelled). */
	set(U_WDM_CLOSE, cl == STATUS_SUCCESS &&
		ov[0].Internal == STATUS_SUCCESS &&
		ov[1].Internal == (uint64_t)STATUS_CANCELLED,
	    ov[0].Internal, ov[1].Internal);
}

static int64_t bug_mode(int64_t h)
{
	static struct testdrv_req in, out;
	static struct u_overlapped ov;

	fill(&in, 0, 0, 3);
	submit(h, &in, &out, &ov);
	u_wait_overlapped(&ov, 300);
	/* Another request reuses the pool, so a write after completion to
	 * the first IRP is seen at once. */
	submit(h, &in, &out, &ov);
	u_wait_overlapped(&ov, 300);
	u_close(h);
	return 0;
}

int64_t u_wdm_selftest_main(uint64_t arg)
{
	static const char name[] = TESTDRV_DEVICE_NAME;
	int64_t h = u_open_device(name, sizeof(name) - 1);
	int64_t bad = u_open_device("nosuch", 6);

	set(U_WDM_OPEN, h > 0 && bad < 0, (uint64_t)h, (uint64_t)bad);
	if (h <= 0)
		return 1;
	if (arg)
		return bug_mode(h);
	check_sync(h);
	check_direct(h);
	check_bad_pointer(h);
	check_overlapped(h);
	check_wait_timeout(h);
	check_watchdog(h);
	check_latency(h);
	check_immediate(h);
	check_close(h);
	return 0;
}
