// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Command-line words point into the VMM's copy of the command line (low
 * memory, left alone after entry): no copy. The last occurrence of a key
 * wins, so `--scenario` (appended by dmalab run) overrides a scenario in
 * `--cmdline`. Keys not in known_keys are reported with one line each by
 * cmdline_report_unknown (after READY) and otherwise ignored, so an older
 * guest runs a newer VMM's command line (boot protocol); every part of
 * the kernel that reads a key lists it in known_keys.
 *
 * Boot-path cost matters (every CPL0 instruction is emulated here): a
 * word's end and its '=' are found with one `repne scasb` each, lookups
 * compare lengths before bytes, and the unknown-key check, which compares
 * every word with every known key, runs after READY. Parsing
 * `scenario=hello quiet` went from ~570 to ~150 instructions this way.
 */
#include "cmdline.h"
#include "kernel.h"

#define MAX_WORDS 32

struct word {
	const char *key;
	const char *val;
	size_t klen;
	size_t vlen;
};

static const char *const known_keys[] = {
	"scenario", "quiet",
	/* the WDM layer (docs/wdm.md) */
	"verifier", "verifier.isr_us", "verifier.dpc_us", "verifier.factor",
	"testdrv.bug", "wdm.isr_cpu",
	/* the DMA driver and its scenarios (docs/dma-driver.md) */
	"markers", "dmadrv.retries", "dmadrv.watchdog_ms", "dmadrv.timeout_ms",
	"dmadrv.max_xfer", "dmadrv.bug", "dmadrv.dpc_cpu", "irps", "depth", "requesters",
	"max_bytes", "seed", "iters", "cancel_every",
	/* the wiring scenarios: hostile */
	"ops",
};

static struct word words[MAX_WORDS];
static unsigned int word_count;

void cmdline_parse(const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end && word_count < MAX_WORDS) {
		struct word *w = &words[word_count];
		size_t n, eq;

		if (*s == ' ') {
			s++;
			continue;
		}
		n = memchr_len(s, ' ', (size_t)(end - s));
		eq = memchr_len(s, '=', n);
		w->key = s;
		w->klen = eq;
		w->val = eq < n ? s + eq + 1 : s + n;
		w->vlen = eq < n ? n - eq - 1 : 0;
		word_count++;
		s += n;
	}
}

void cmdline_report_unknown(void)
{
	unsigned int i, k;

	for (i = 0; i < word_count; i++) {
		for (k = 0; k < ARRAY_SIZE(known_keys); k++)
			if (str_eq_n(words[i].key, words[i].klen, known_keys[k]))
				break;
		if (k == ARRAY_SIZE(known_keys))
			kprintf("cmdline: ignoring unknown key '%.*s'\n",
				(int)words[i].klen, words[i].key);
	}
}

bool cmdline_get_n(const char *key, size_t klen, const char **val,
		   size_t *vlen)
{
	unsigned int i = word_count;

	while (i--) {
		if (words[i].klen == klen && !memcmp(words[i].key, key, klen)) {
			*val = words[i].val;
			*vlen = words[i].vlen;
			return true;
		}
	}
	return false;
}
