// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Command-line words point into the VMM's copy of the command line (low
 * memory, left alone after entry): no copy. The last occurrence of a key
 * wins, so `--scenario` (appended by dmalab run) overrides a scenario in
 * `--cmdline`. Keys not in known_keys are ignored with one line each, so
 * an older guest runs a newer VMM's command line (boot protocol); later
 * issues add their keys to known_keys.
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

static const char *const known_keys[] = { "scenario", "quiet" };

static struct word words[MAX_WORDS];
static unsigned int word_count;

static bool known(const struct word *w)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(known_keys); i++)
		if (str_eq_n(w->key, w->klen, known_keys[i]))
			return true;
	return false;
}

void cmdline_parse(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && word_count < MAX_WORDS) {
		struct word *w = &words[word_count];

		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		w->key = &s[i];
		while (i < len && s[i] != ' ' && s[i] != '=')
			i++;
		w->klen = (size_t)(&s[i] - w->key);
		w->val = &s[i];
		if (i < len && s[i] == '=') {
			w->val = &s[++i];
			while (i < len && s[i] != ' ')
				i++;
		}
		w->vlen = (size_t)(&s[i] - w->val);
		word_count++;
	}
	for (i = 0; i < word_count; i++)
		if (!known(&words[i]))
			kprintf("cmdline: ignoring unknown key '%.*s'\n",
				(int)words[i].klen, words[i].key);
}

bool cmdline_get(const char *key, const char **val, size_t *vlen)
{
	unsigned int i = word_count;

	while (i--) {
		if (str_eq_n(words[i].key, words[i].klen, key)) {
			*val = words[i].val;
			*vlen = words[i].vlen;
			return true;
		}
	}
	return false;
}
