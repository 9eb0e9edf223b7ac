// SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause
/*
 * KUnit suite "dmalab_dma": the driver against a bound dmalab controller,
 * through the dmaengine client API as dmatest uses it.
 *
 * Each case takes a channel of the controller with dma_request_channel()
 * (the case is skipped when there is no free one: dmatest keeps the
 * channels it ran on until they are released, as the in-guest harness
 * does before it runs KUnit) and two coherent buffers.
 *
 * What is checked: a copy completes with its callback's dmaengine_result
 * and moves the right bytes, also at odd offsets and lengths; a
 * transaction longer than the chunk limit is cut into chunks and
 * reassembled; memset (FILL); several transactions complete in
 * submission order; the residue of a queued and of a running transaction;
 * terminate_all stops a running transaction with no callback afterwards
 * and leaves the channel usable; a source or destination outside guest RAM
 * ends in READ_FAILED / WRITE_FAILED, DMA_ERROR from tx_status, the error
 * counted and nothing retried; a completion whose interrupt never comes
 * (its cause masked) is completed by the watchdog; a zero length is
 * refused at prepare; the controller unbound (remove) and bound again
 * (probe) copies.
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/jiffies.h>
#include <linux/string.h>

#include "dmalab_dma_priv.h"

#define T_BUF		SZ_16K
#define T_LEN		SZ_4K
#define T_TIMEOUT	msecs_to_jiffies(5000)
/* Far above any guest RAM: the device answers ERR_SRC / ERR_DST. */
#define T_BAD_ADDR	0x7ff000000000ULL
#define T_BATCH		8

struct dmalab_test {
	struct dma_chan *chan;
	struct dmalab_chan *ch;
	struct device *dev;
	u8 *src, *dst;
	dma_addr_t src_dma, dst_dma;
};

struct dmalab_test_done {
	struct completion done;
	struct dmaengine_result res;
	unsigned int calls;
	int order;
};

static atomic_t dmalab_test_seq = ATOMIC_INIT(0);

static void dmalab_test_callback(void *param, const struct dmaengine_result *res)
{
	struct dmalab_test_done *d = param;

	d->res = *res;
	d->calls++;
	d->order = atomic_inc_return(&dmalab_test_seq);
	complete(&d->done);
}

static u64 dmalab_test_counter(enum dmalab_dma_counter c)
{
	u64 v[DMALAB_DMA_NR_COUNTERS];

	dmalab_dma_read_counters(v);
	return v[c];
}

static void dmalab_test_pattern(u8 *buf, size_t len, u8 seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = seed + i * 7;
}

static dma_cookie_t dmalab_test_submit(struct kunit *test,
				       struct dma_async_tx_descriptor *tx,
				       struct dmalab_test_done *d)
{
	dma_cookie_t cookie;

	KUNIT_ASSERT_NOT_NULL(test, tx);
	init_completion(&d->done);
	d->calls = 0;
	tx->callback_result = dmalab_test_callback;
	tx->callback_param = d;
	cookie = dmaengine_submit(tx);
	KUNIT_ASSERT_FALSE(test, dma_submit_error(cookie));
	return cookie;
}

static dma_cookie_t dmalab_test_copy(struct kunit *test, dma_addr_t dst,
				     dma_addr_t src, size_t len,
				     struct dmalab_test_done *d)
{
	struct dmalab_test *t = test->priv;
	struct dma_async_tx_descriptor *tx;

	tx = dmaengine_prep_dma_memcpy(t->chan, dst, src, len, DMA_PREP_INTERRUPT);
	return dmalab_test_submit(test, tx, d);
}

static void dmalab_test_wait(struct kunit *test, struct dmalab_test_done *d)
{
	KUNIT_ASSERT_NE_MSG(test, wait_for_completion_timeout(&d->done, T_TIMEOUT),
			    0UL, "no callback within 5 s");
}

static void dmalab_test_set_max_xfer(struct dmalab_test *t, u32 max_xfer)
{
	unsigned long flags;

	spin_lock_irqsave(&t->ch->vc.lock, flags);
	t->ch->max_xfer = max_xfer;
	spin_unlock_irqrestore(&t->ch->vc.lock, flags);
}

/* A free channel of the controller and two coherent buffers. */
static void dmalab_test_acquire(struct kunit *test, struct dmalab_test *t)
{
	dma_cap_mask_t mask;

	dma_cap_zero(mask);
	dma_cap_set(DMA_MEMCPY, mask);
	t->chan = dma_request_channel(mask, dmalab_dma_chan_filter, NULL);
	if (!t->chan)
		kunit_skip(test, "no free dmalab channel (none bound, or all held)");
	t->ch = to_dmalab_chan(t->chan);
	t->dev = t->chan->device->dev;
	t->src = dma_alloc_coherent(t->dev, T_BUF, &t->src_dma, GFP_KERNEL);
	t->dst = dma_alloc_coherent(t->dev, T_BUF, &t->dst_dma, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->src);
	KUNIT_ASSERT_NOT_NULL(test, t->dst);
}

static void dmalab_test_release(struct dmalab_test *t)
{
	if (!t->chan)
		return;
	dmaengine_terminate_sync(t->chan);
	dmalab_test_set_max_xfer(t, t->ch->dd->max_xfer);
	if (t->src)
		dma_free_coherent(t->dev, T_BUF, t->src, t->src_dma);
	if (t->dst)
		dma_free_coherent(t->dev, T_BUF, t->dst, t->dst_dma);
	t->src = NULL;
	t->dst = NULL;
	dma_release_channel(t->chan);
	t->chan = NULL;
}

static int dmalab_test_init(struct kunit *test)
{
	struct dmalab_test *t;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	test->priv = t;
	dmalab_test_acquire(test, t);
	return 0;
}

/* Whether counter @c rises above @before within two seconds. */
static bool dmalab_test_counter_rises(enum dmalab_dma_counter c, u64 before)
{
	unsigned long end = jiffies + 2 * HZ;

	while (dmalab_test_counter(c) <= before) {
		if (time_after(jiffies, end))
			return false;
		msleep(1);
	}
	return true;
}

static void dmalab_test_exit(struct kunit *test)
{
	if (test->priv)
		dmalab_test_release(test->priv);
}

/* A copy completes: NOERROR, residue 0, the bytes, DMA_COMPLETE, counted. */
static void dmalab_test_memcpy(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	u64 completions = dmalab_test_counter(DMALAB_DMA_COMPLETIONS);
	u64 interrupts = dmalab_test_counter(DMALAB_DMA_INTERRUPTS);
	struct dmalab_test_done d;
	dma_cookie_t cookie;

	dmalab_test_pattern(t->src, T_LEN, 1);
	memset(t->dst, 0, T_LEN);
	cookie = dmalab_test_copy(test, t->dst_dma, t->src_dma, T_LEN, &d);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &d);

	KUNIT_EXPECT_EQ(test, d.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, d.res.residue, 0U);
	KUNIT_EXPECT_EQ(test, d.calls, 1U);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, T_LEN), 0);
	KUNIT_EXPECT_EQ(test, dmaengine_tx_status(t->chan, cookie, NULL), DMA_COMPLETE);
	KUNIT_EXPECT_EQ(test, dmalab_test_counter(DMALAB_DMA_COMPLETIONS),
			completions + 1);
	/*
	 * The record can be claimed by the watchdog before its message lands
	 * when the host is slow to deliver it; the message itself must still
	 * come (no fault plan drops it here).
	 */
	KUNIT_EXPECT_TRUE(test, dmalab_test_counter_rises(DMALAB_DMA_INTERRUPTS,
							  interrupts));
}

/* Odd source and destination offsets and an odd length: only those bytes. */
static void dmalab_test_memcpy_unaligned(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	struct dmalab_test_done d;

	dmalab_test_pattern(t->src, T_LEN, 2);
	memset(t->dst, 0x11, T_LEN);
	dmalab_test_copy(test, t->dst_dma + 5, t->src_dma + 3, 1001, &d);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &d);

	KUNIT_EXPECT_EQ(test, d.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst + 5, t->src + 3, 1001), 0);
	KUNIT_EXPECT_NULL(test, memchr_inv(t->dst, 0x11, 5));
	KUNIT_EXPECT_NULL(test, memchr_inv(t->dst + 1006, 0x11, T_LEN - 1006));
}

/* Longer than the chunk limit: several hardware descriptors, one result. */
static void dmalab_test_chunks(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	struct dmalab_test_done d;
	size_t len = 4 * SZ_1K + 100;

	dmalab_test_set_max_xfer(t, SZ_1K);
	dmalab_test_pattern(t->src, len, 3);
	memset(t->dst, 0, len);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, len, &d);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &d);

	KUNIT_EXPECT_EQ(test, d.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, d.res.residue, 0U);
	KUNIT_EXPECT_EQ(test, d.calls, 1U);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, len), 0);
}

static void dmalab_test_memset(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	struct dma_async_tx_descriptor *tx;
	struct dmalab_test_done d;

	if (!dma_has_cap(DMA_MEMSET, t->chan->device->cap_mask))
		kunit_skip(test, "the controller has no FILL");
	memset(t->dst, 0, T_LEN);
	tx = dmaengine_prep_dma_memset(t->chan, t->dst_dma + 1, 0xa5, 3000,
				       DMA_PREP_INTERRUPT);
	dmalab_test_submit(test, tx, &d);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &d);

	KUNIT_EXPECT_EQ(test, d.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, t->dst[0], 0);
	KUNIT_EXPECT_NULL(test, memchr_inv(t->dst + 1, 0xa5, 3000));
	KUNIT_EXPECT_NULL(test, memchr_inv(t->dst + 3001, 0, T_LEN - 3001));
}

/*
 * Queued before issue: in progress, the whole length as residue; then
 * every callback once, in submission order.
 */
static void dmalab_test_batch_order(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	struct dmalab_test_done d[T_BATCH];
	dma_cookie_t cookie[T_BATCH];
	struct dma_tx_state state;
	size_t part = T_LEN / T_BATCH;
	unsigned int i;

	dmalab_test_pattern(t->src, T_LEN, 4);
	memset(t->dst, 0, T_LEN);
	for (i = 0; i < T_BATCH; i++)
		cookie[i] = dmalab_test_copy(test, t->dst_dma + i * part,
					     t->src_dma + i * part, part, &d[i]);
	KUNIT_EXPECT_EQ(test, dmaengine_tx_status(t->chan, cookie[T_BATCH - 1], &state),
			DMA_IN_PROGRESS);
	KUNIT_EXPECT_EQ(test, state.residue, (u32)part);
	dma_async_issue_pending(t->chan);
	for (i = 0; i < T_BATCH; i++)
		dmalab_test_wait(test, &d[i]);

	for (i = 0; i < T_BATCH; i++) {
		KUNIT_EXPECT_EQ(test, d[i].res.result, DMA_TRANS_NOERROR);
		KUNIT_EXPECT_EQ(test, d[i].calls, 1U);
		if (i)
			KUNIT_EXPECT_GT(test, d[i].order, d[i - 1].order);
	}
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, T_LEN), 0);
}

/* Submitted, never issued, terminated: no callback, nothing moved. */
static void dmalab_test_terminate_queued(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	struct dmalab_test_done d;

	memset(t->src, 0x3c, T_LEN);
	memset(t->dst, 0, T_LEN);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_LEN, &d);
	KUNIT_EXPECT_EQ(test, dmaengine_terminate_sync(t->chan), 0);
	dma_async_issue_pending(t->chan);
	msleep(50);
	KUNIT_EXPECT_EQ(test, d.calls, 0U);
	KUNIT_EXPECT_NULL(test, memchr_inv(t->dst, 0, T_LEN));
}

/*
 * A long transaction (64-byte chunks, one interrupt each): its residue
 * falls while it runs; terminate_all stops it and the ones behind it, no
 * callback comes afterwards, and the channel still copies.
 */
static void dmalab_test_terminate_running(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	unsigned long deadline = jiffies + T_TIMEOUT;
	struct dmalab_test_done d[3], after;
	struct dma_tx_state state;
	unsigned int calls[3], i;
	dma_cookie_t first;

	dmalab_test_set_max_xfer(t, 64);
	dmalab_test_pattern(t->src, T_BUF, 5);
	first = dmalab_test_copy(test, t->dst_dma, t->src_dma, T_BUF, &d[0]);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_BUF, &d[1]);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_BUF, &d[2]);
	dma_async_issue_pending(t->chan);
	do {
		KUNIT_ASSERT_EQ(test, dmaengine_tx_status(t->chan, first, &state),
				DMA_IN_PROGRESS);
		if (state.residue < T_BUF)
			break;
		cpu_relax();
	} while (time_before(jiffies, deadline));
	KUNIT_EXPECT_LT(test, state.residue, (u32)T_BUF);
	KUNIT_EXPECT_GT(test, state.residue, 0U);
	KUNIT_EXPECT_EQ(test, state.residue % 64, 0U);

	KUNIT_EXPECT_EQ(test, dmaengine_terminate_sync(t->chan), 0);
	for (i = 0; i < 3; i++)
		calls[i] = d[i].calls;
	msleep(50);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_EQ(test, d[i].calls, calls[i]);
	KUNIT_EXPECT_EQ(test, d[0].calls, 0U);
	KUNIT_EXPECT_EQ(test, d[2].calls, 0U);

	dmalab_test_set_max_xfer(t, t->ch->dd->max_xfer);
	dmalab_test_pattern(t->src, T_LEN, 6);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_LEN, &after);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &after);
	KUNIT_EXPECT_EQ(test, after.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, T_LEN), 0);
}

/*
 * An address outside guest RAM: the result, DMA_ERROR, counted, no retry,
 * nothing written; the next copy works.
 */
static void dmalab_test_bad_address(struct kunit *test, bool bad_src)
{
	struct dmalab_test *t = test->priv;
	u64 errors = dmalab_test_counter(DMALAB_DMA_ERRORS_REPORTED);
	u64 retries = dmalab_test_counter(DMALAB_DMA_RETRIES);
	struct dmalab_test_done d, after;
	dma_cookie_t cookie;

	memset(t->dst, 0, T_LEN);
	cookie = dmalab_test_copy(test, bad_src ? t->dst_dma : T_BAD_ADDR,
				  bad_src ? T_BAD_ADDR : t->src_dma, 256, &d);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &d);

	KUNIT_EXPECT_EQ(test, d.res.result, bad_src ? DMA_TRANS_READ_FAILED :
			DMA_TRANS_WRITE_FAILED);
	KUNIT_EXPECT_EQ(test, d.res.residue, 256U);
	KUNIT_EXPECT_EQ(test, dmaengine_tx_status(t->chan, cookie, NULL), DMA_ERROR);
	KUNIT_EXPECT_EQ(test, dmalab_test_counter(DMALAB_DMA_ERRORS_REPORTED),
			errors + 1);
	KUNIT_EXPECT_EQ(test, dmalab_test_counter(DMALAB_DMA_RETRIES), retries);
	KUNIT_EXPECT_NULL(test, memchr_inv(t->dst, 0, T_LEN));

	dmalab_test_pattern(t->src, T_LEN, 7);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_LEN, &after);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &after);
	KUNIT_EXPECT_EQ(test, after.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, T_LEN), 0);
}

static void dmalab_test_bad_source(struct kunit *test)
{
	dmalab_test_bad_address(test, true);
}

static void dmalab_test_bad_destination(struct kunit *test)
{
	dmalab_test_bad_address(test, false);
}

/*
 * The channel's cause masked in INT_MASK: the record is written but no
 * message comes, so the watchdog completes the transaction a period or two
 * later (watchdog_recoveries). Unmasking sends the held message late; the
 * ISR then finds nothing.
 */
static void dmalab_test_lost_interrupt(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	void __iomem *mask = t->ch->dd->regs + DMALAB_REG_INT_MASK;
	u64 recoveries = dmalab_test_counter(DMALAB_DMA_WATCHDOG_RECOVERIES);
	u32 saved = readl(mask);
	struct dmalab_test_done d;

	dmalab_test_pattern(t->src, T_LEN, 8);
	memset(t->dst, 0, T_LEN);
	writel(saved | BIT(t->ch->index), mask);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_LEN, &d);
	dma_async_issue_pending(t->chan);
	wait_for_completion_timeout(&d.done, T_TIMEOUT);
	writel(saved, mask);

	KUNIT_ASSERT_EQ_MSG(test, d.calls, 1U, "no callback within 5 s");
	KUNIT_EXPECT_EQ(test, d.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, T_LEN), 0);
	KUNIT_EXPECT_EQ(test, dmalab_test_counter(DMALAB_DMA_WATCHDOG_RECOVERIES),
			recoveries + 1);
}

/*
 * Unbind and bind again with no client: remove() tears the controller
 * down (the count of bound controllers drops to 0, the counters stay),
 * probe() brings it back and the new binding copies.
 */
static void dmalab_test_unbind_rebind(struct kunit *test)
{
	struct dmalab_test *t = test->priv;
	struct device *dev = get_device(t->dev);
	u64 v[DMALAB_DMA_NR_COUNTERS];
	struct dmalab_test_done d;
	u64 completions;

	dmalab_test_release(t);
	completions = dmalab_test_counter(DMALAB_DMA_COMPLETIONS);
	device_release_driver(dev);
	KUNIT_EXPECT_EQ(test, dmalab_dma_read_counters(v), 0);
	KUNIT_EXPECT_EQ(test, v[DMALAB_DMA_COMPLETIONS], completions);
	KUNIT_EXPECT_EQ(test, device_attach(dev), 1);
	put_device(dev);
	KUNIT_ASSERT_EQ(test, dmalab_dma_read_counters(v), 1);

	dmalab_test_acquire(test, t);
	dmalab_test_pattern(t->src, T_LEN, 9);
	memset(t->dst, 0, T_LEN);
	dmalab_test_copy(test, t->dst_dma, t->src_dma, T_LEN, &d);
	dma_async_issue_pending(t->chan);
	dmalab_test_wait(test, &d);
	KUNIT_EXPECT_EQ(test, d.res.result, DMA_TRANS_NOERROR);
	KUNIT_EXPECT_EQ(test, memcmp(t->dst, t->src, T_LEN), 0);
}

static void dmalab_test_zero_length(struct kunit *test)
{
	struct dmalab_test *t = test->priv;

	KUNIT_EXPECT_NULL(test, dmaengine_prep_dma_memcpy(t->chan, t->dst_dma,
							  t->src_dma, 0, 0));
}

static struct kunit_case dmalab_test_cases[] = {
	KUNIT_CASE(dmalab_test_memcpy),
	KUNIT_CASE(dmalab_test_memcpy_unaligned),
	KUNIT_CASE(dmalab_test_chunks),
	KUNIT_CASE(dmalab_test_memset),
	KUNIT_CASE(dmalab_test_batch_order),
	KUNIT_CASE(dmalab_test_terminate_queued),
	KUNIT_CASE(dmalab_test_terminate_running),
	KUNIT_CASE(dmalab_test_bad_source),
	KUNIT_CASE(dmalab_test_bad_destination),
	KUNIT_CASE(dmalab_test_lost_interrupt),
	KUNIT_CASE(dmalab_test_zero_length),
	KUNIT_CASE(dmalab_test_unbind_rebind),
	{}
};

static struct kunit_suite dmalab_test_suite = {
	.name = "dmalab_dma",
	.init = dmalab_test_init,
	.exit = dmalab_test_exit,
	.test_cases = dmalab_test_cases,
};

kunit_test_suite(dmalab_test_suite);
