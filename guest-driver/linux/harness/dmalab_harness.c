// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmalab in-guest test harness: the last thing the dmalab Linux guest boots.
 *
 * On hosts where ring-0 code is emulated, user space cannot make system
 * calls, so the tests run as built-in kernel code and this harness takes
 * the place of init. From a late_initcall_sync, i.e. after every driver
 * probed and dmatest's own init ran, it
 *
 *  1. waits for device probing to finish;
 *  2. runs dmatest on the DMA channels (dmatest_start(), unless the command
 *     line started it with dmatest.run=1) and collects the totals per
 *     channel (dmatest_collect(), which also releases the channels);
 *  3. runs the built-in KUnit suites whose names match dmalab.kunit, with
 *     the channels free for the driver's own suite;
 *  4. prints one line, DMALAB-RESULT {json}, with the dmatest totals, the
 *     KUnit totals and the driver's counters (docs/boot-protocol.md,
 *     "Serial conventions"), and
 *  5. ends the VM by writing the status to the debug-exit port 0xF4:
 *     DMALAB_EXIT_PASS (0) when everything passed, DMALAB_EXIT_FAIL (1)
 *     otherwise.
 *
 * It never returns to the boot, so the KUnit executor does not run the
 * suites a second time and the boot never reaches "No working init found".
 * With dmalab.harness=0 it does nothing and the boot goes on (a full
 * system with an initramfs).
 *
 * A kernel panic ends the VM at once, harness or not: a panic notifier,
 * registered from an early initcall, prints a DMALAB-RESULT line with
 * "error":"kernel panic" and the panic message, flushes the console and
 * writes DMALAB_EXIT_PANIC (7) to the debug-exit port. Without it the
 * panicking kernel would spin until the VMM's --timeout. The image is built
 * with CONFIG_PANIC_ON_OOPS, so an oops ends the run the same way.
 *
 * Command-line parameters (all optional):
 *   dmalab.harness=0|1       run the harness (1)
 *   dmalab.iterations=N      dmatest transfers per thread (8; 0 starts
 *                            none, then pass dmalab.channels=0 too)
 *   dmalab.threads=N         dmatest threads per channel (1)
 *   dmalab.buf_size=BYTES    dmatest buffer size (256); every byte is
 *                            filled and checked by the CPU, the cost on
 *                            an emulated ring 0
 *   dmalab.channels=N        channels dmatest must have tested to pass (4)
 *   dmalab.kunit=GLOB        suites to run, by name ("*"; "" runs none)
 *   dmalab.timeout_ms=MS     how long dmatest may take in all (60000)
 *   dmalab.test_panic=1      panic on purpose as the harness starts (a
 *                            test of the panic exit)
 * With "quiet" on the command line only errors and the result line reach
 * the console.
 *
 * dmatest's own parameters (dmatest.timeout, .channel, .max_channels,
 * .noverify, ...) apply as documented in Documentation/driver-api/dmaengine/
 * dmatest.rst.
 */
#include <linux/console.h>
#include <linux/device/driver.h>
#include <linux/dmatest.h>
#include <linux/glob.h>
#include <linux/init.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/printk.h>
#include <linux/reboot.h>
#include <linux/seq_buf.h>
#include <linux/slab.h>
#include <kunit/test.h>

#include "dmalab_dma.h"

/* Prefix of the harness's own messages (not of the KTAP and result lines). */
#define HARNESS "dmalab-harness: "

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "dmalab."

static bool harness = true;
module_param(harness, bool, 0444);
MODULE_PARM_DESC(harness, "Run the harness at the end of the boot (default 1)");

static unsigned int iterations = 8;
module_param(iterations, uint, 0444);
MODULE_PARM_DESC(iterations, "dmatest transfers per thread (default 8)");

static unsigned int threads = 1;
module_param(threads, uint, 0444);
MODULE_PARM_DESC(threads, "dmatest threads per channel (default 1)");

/*
 * Lengths 1..256 at random offsets, every byte around them checked; each
 * byte costs ~30 emulated instructions to fill and check where ring 0 is
 * emulated, so 1024 made dmatest the largest item of a run's profile.
 */
static unsigned int buf_size = 256;
module_param(buf_size, uint, 0444);
MODULE_PARM_DESC(buf_size, "dmatest buffer size in bytes (default 256)");

static unsigned int channels = 4;
module_param(channels, uint, 0444);
MODULE_PARM_DESC(channels, "Channels dmatest must have tested (default 4)");

static char *kunit = "*";
module_param(kunit, charp, 0444);
MODULE_PARM_DESC(kunit, "Glob of the KUnit suites to run (default *)");

static unsigned int timeout_ms = 60000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms, "Time dmatest may take in all (default 60000)");

static bool test_panic;
module_param(test_panic, bool, 0444);
MODULE_PARM_DESC(test_panic, "Panic on purpose as the harness starts (default 0)");

/* The debug-exit port of the dmalab VMM: the byte written is the status. */
#define DMALAB_EXIT_PORT	0xf4
/* Statuses (vmm/protocol/src/status.rs): all passed, a test failed, panic. */
#define DMALAB_EXIT_PASS	0
#define DMALAB_EXIT_FAIL	1
#define DMALAB_EXIT_PANIC	7
/* printk's limit for one record is a little under 1024 bytes. */
#define DMALAB_RESULT_MAX	960
#define RESULT_START		"DMALAB-RESULT {\"scenario\":\"linux\""

/* The built-in suites, as lib/kunit/executor.c finds them (vmlinux.lds.h). */
extern struct kunit_suite * const __kunit_suites_start[];
extern struct kunit_suite * const __kunit_suites_end[];

struct dmatest_summary {
	struct seq_buf *json;
	unsigned int channels;
	unsigned int failures;
	bool all_ok;
};

struct kunit_summary {
	unsigned int suites, suites_passed, suites_failed, suites_skipped;
	unsigned int cases, passed, failed, skipped;
};

/* Appends ,"key":value to the JSON object being written. */
static void json_uint(struct seq_buf *json, const char *key, unsigned int v)
{
	seq_buf_printf(json, ",\"%s\":%u", key, v);
}

static void dmatest_report(const struct dmatest_chan_totals *t, void *ctx)
{
	struct dmatest_summary *s = ctx;

	seq_buf_printf(s->json,
		       "%s{\"chan\":\"%s\",\"threads\":%u,\"tests\":%u,\"failures\":%u,\"result\":%d,\"finished\":%s}",
		       s->channels ? "," : "", t->chan, t->threads, t->tests,
		       t->failures, t->result, t->finished ? "true" : "false");
	pr_info(HARNESS "dmatest on %s: %u tests, %u failures, result %d%s\n",
		t->chan, t->tests, t->failures, t->result,
		t->finished ? "" : ", not finished");
	s->channels++;
	s->failures += t->failures;
	if (!t->finished || t->failures || t->result || !t->tests)
		s->all_ok = false;
}

/* Runs dmatest and appends "dmatest":{...}; returns true when it passed. */
static bool run_dmatest(struct seq_buf *json)
{
	struct dmatest_summary s = { .json = json, .all_ok = true };
	int started, collected;

	if (!iterations) {
		started = 0;
		pr_info(HARNESS "dmatest not started (dmalab.iterations=0)\n");
	} else {
		started = dmatest_start(iterations, threads, buf_size);
	}
	if (started == -EBUSY)
		pr_info(HARNESS "dmatest was started from the command line\n");
	else if (started < 0)
		pr_err(HARNESS "dmatest did not start: %d\n", started);
	else if (started > 0)
		pr_info(HARNESS "dmatest started on %d channels\n", started);

	seq_buf_printf(json, ",\"dmatest\":{\"iterations\":%u", iterations);
	json_uint(json, "threads", threads);
	json_uint(json, "buf_size", buf_size);
	seq_buf_puts(json, ",\"channels\":[");
	collected = dmatest_collect(msecs_to_jiffies(timeout_ms),
				    dmatest_report, &s);
	seq_buf_printf(json, "],\"failures\":%u", s.failures);
	if (collected == -ETIMEDOUT) {
		pr_err(HARNESS "dmatest did not end within %u ms\n", timeout_ms);
		seq_buf_puts(json, ",\"error\":\"timeout\"");
	}
	seq_buf_putc(json, '}');

	if (s.channels < channels) {
		pr_err(HARNESS "dmatest tested %u channels, %u expected\n",
		       s.channels, channels);
		return false;
	}
	return collected >= 0 && s.all_ok;
}

static void count_suite(struct kunit_suite *suite, struct kunit_summary *k)
{
	struct kunit_case *test_case;
	unsigned int failed = 0, passed = 0;

	k->suites++;
	kunit_suite_for_each_test_case(suite, test_case) {
		k->cases++;
		/* A suite whose init failed ran none of its cases. */
		if (suite->suite_init_err || test_case->status == KUNIT_FAILURE) {
			k->failed++;
			failed++;
		} else if (test_case->status == KUNIT_SKIPPED) {
			k->skipped++;
		} else {
			k->passed++;
			passed++;
		}
	}
	if (failed || suite->suite_init_err)
		k->suites_failed++;
	else if (passed)
		k->suites_passed++;
	else
		k->suites_skipped++;
}

/* Runs the matching KUnit suites, appends "kunit":{...}; true when passed. */
static bool run_kunit(struct seq_buf *json)
{
	struct kunit_summary k = {};
	struct kunit_suite **suites;
	struct kunit_suite * const *s;
	size_t n = 0, max = __kunit_suites_end - __kunit_suites_start;

	suites = kcalloc(max ? max : 1, sizeof(*suites), GFP_KERNEL);
	if (!suites) {
		seq_buf_puts(json, ",\"kunit\":{\"error\":\"no memory\"}");
		return false;
	}
	for (s = __kunit_suites_start; s < __kunit_suites_end; s++)
		if (kunit[0] && glob_match(kunit, (*s)->name))
			suites[n++] = *s;

	if (n) {
		pr_info(HARNESS "running %zu KUnit suites matching \"%s\"\n", n, kunit);
		/* The executor's header, for KTAP parsers. */
		pr_info("KTAP version 1\n");
		pr_info("1..%zu\n", n);
		__kunit_test_suites_init(suites, n);
	}
	while (n)
		count_suite(suites[--n], &k);
	kfree(suites);

	seq_buf_printf(json, ",\"kunit\":{\"suites\":%u", k.suites);
	json_uint(json, "suites_passed", k.suites_passed);
	json_uint(json, "suites_failed", k.suites_failed);
	json_uint(json, "suites_skipped", k.suites_skipped);
	json_uint(json, "cases", k.cases);
	json_uint(json, "passed", k.passed);
	json_uint(json, "failed", k.failed);
	json_uint(json, "skipped", k.skipped);
	seq_buf_putc(json, '}');

	/* Asking for suites and running none is a broken image, not a pass. */
	if (kunit[0] && !k.cases) {
		pr_err(HARNESS "no KUnit case matched \"%s\"\n", kunit);
		return false;
	}
	return !k.failed;
}

/* Appends the driver's counters; returns the number of bound controllers. */
static int add_driver_counters(struct seq_buf *json)
{
	u64 v[DMALAB_DMA_NR_COUNTERS];
	int controllers = dmalab_dma_read_counters(v);
	unsigned int i;

	seq_buf_printf(json, ",\"controllers\":%d", controllers);
	for (i = 0; i < DMALAB_DMA_NR_COUNTERS; i++)
		seq_buf_printf(json, ",\"%s\":%llu",
			       dmalab_dma_counter_names[i], v[i]);
	return controllers;
}

/* Static, so that no allocation failure can cost the result line. */
static char result_line[DMALAB_RESULT_MAX] __initdata;
/* Not __initdata: a panic may come after the init sections were freed. */
static char panic_line[DMALAB_RESULT_MAX];

/* Appends @msg as the body of a JSON string, cut short to fit the line. */
static void json_string_body(struct seq_buf *json, const char *msg)
{
	/* Room for the longest escape and the closing "}. */
	const size_t reserve = 8;

	for (; *msg && seq_buf_used(json) + reserve < json->size; msg++) {
		unsigned char c = *msg;

		if (c == '"' || c == '\\')
			seq_buf_printf(json, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			seq_buf_printf(json, "\\u%04x", c);
		else
			seq_buf_putc(json, c);
	}
}

/*
 * Panic notifier: the result line with the panic message, then the exit
 * port. panic() printed "Kernel panic - not syncing: <msg>" just before;
 * the console is flushed so that line and this one are out before the VM
 * ends. Runs once, on the panicking CPU, with the other CPUs stopped.
 */
static int dmalab_panic_exit(struct notifier_block *nb, unsigned long event,
			     void *msg)
{
	struct seq_buf json;

	seq_buf_init(&json, panic_line, sizeof(panic_line));
	seq_buf_puts(&json, RESULT_START ",\"status\":\"fail\"");
	seq_buf_puts(&json, ",\"error\":\"kernel panic\",\"panic\":\"");
	json_string_body(&json, msg ? msg : "");
	seq_buf_puts(&json, "\"}");

	console_verbose();
	pr_emerg("%.*s\n", (int)seq_buf_used(&json), panic_line);
	console_flush_on_panic(CONSOLE_FLUSH_PENDING);
	outb(DMALAB_EXIT_PANIC, DMALAB_EXIT_PORT);
	return NOTIFY_DONE;
}

static struct notifier_block dmalab_panic_nb = {
	.notifier_call = dmalab_panic_exit,
	/* Before other notifiers, which might not return. */
	.priority = INT_MAX,
};

static int __init dmalab_panic_exit_init(void)
{
	atomic_notifier_chain_register(&panic_notifier_list, &dmalab_panic_nb);
	return 0;
}
early_initcall(dmalab_panic_exit_init);

static int __init dmalab_harness_run(void)
{
	struct seq_buf json;
	bool pass;
	u8 status;

	if (!harness) {
		pr_info(HARNESS "off (dmalab.harness=0), the boot goes on\n");
		return 0;
	}

	if (test_panic)
		panic("dmalab.test_panic=1: a panic on purpose");

	wait_for_device_probe();

	seq_buf_init(&json, result_line, sizeof(result_line));
	seq_buf_puts(&json, RESULT_START);

	pass = run_dmatest(&json);
	pass = run_kunit(&json) && pass;
	if (add_driver_counters(&json) < 1) {
		pr_err(HARNESS "the dmalab DMA driver bound no device\n");
		pass = false;
	}

	seq_buf_printf(&json, ",\"status\":\"%s\"}", pass ? "pass" : "fail");
	if (seq_buf_has_overflowed(&json)) {
		/* Truncated JSON would be worse than none: say what happened. */
		seq_buf_clear(&json);
		seq_buf_puts(&json, RESULT_START ",\"status\":\"fail\"");
		seq_buf_puts(&json, ",\"error\":\"result line too long\"}");
		pass = false;
	}
	status = pass ? DMALAB_EXIT_PASS : DMALAB_EXIT_FAIL;
	/*
	 * One record, no prefix: the whole line reaches the console at once,
	 * and also with "quiet" or "loglevel=" on the command line.
	 */
	console_verbose();
	pr_info("%.*s\n", (int)seq_buf_used(&json), result_line);

	outb(status, DMALAB_EXIT_PORT);
	/* Only reached on a VMM without the debug-exit port. */
	pr_emerg(HARNESS "the debug-exit port did not end the VM; halting\n");
	kernel_halt();
	return 0;
}
late_initcall_sync(dmalab_harness_run);
