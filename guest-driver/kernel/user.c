// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * User mode: scenarios are programs that run at CPL3, natively on this
 * platform (ring-0 code is emulated, ring-3 code is not), and enter the
 * kernel through the int3 system-call gate (abi.h).
 *
 * The user image (the files in user/, sections .user.*) sits alone in the 2 MiB
 * page at _user_start, which user_init marks user-accessible; its entry
 * is u_start (user/ustart.S), which calls main(arg) and passes the return
 * value to SYS_EXIT. user_run enters it through usermode.S and gets the
 * exit status back when SYS_EXIT unwinds to the saved kernel context.
 * Interrupts are on in user mode and restored to the caller's state after.
 */
#include "cpu.h"
#include "paging.h"
#include "platform.h"
#include "user.h"

#define MAX_USER_REGIONS 8

struct user_region {
	uint64_t base;
	uint64_t end;
};

uint64_t user_enter(struct user_context *ctx, uint64_t rip, uint64_t rsp,
		    uint64_t arg0, uint64_t arg1);
void __noreturn user_leave(struct user_context *ctx, int64_t status);

/* user/ustart.S and user/ulib.c */
extern char u_start[], u_stack_top[];

static struct user_region regions[MAX_USER_REGIONS];
static unsigned int region_count;

int user_region_add(uint64_t base, uint64_t len)
{
	if (region_count == MAX_USER_REGIONS || paging_mark_user(base, len))
		return -1;
	regions[region_count].base = base;
	regions[region_count].end = base + len;
	region_count++;
	return 0;
}

bool user_range_ok(uint64_t addr, uint64_t len)
{
	unsigned int i;

	if (addr + len < addr)
		return false;
	for (i = 0; i < region_count; i++)
		if (addr >= regions[i].base && addr + len <= regions[i].end)
			return true;
	return false;
}

int user_init(void)
{
	return user_region_add((uint64_t)_user_start,
			       (uint64_t)(_user_end - _user_start));
}

int64_t user_run(user_main_t main, uint64_t arg)
{
	struct cpu *c = this_cpu();
	struct user_context ctx = { 0, (char *)c->tss + 4 };
	uint64_t flags = read_rflags();
	int64_t status;

	irq_disable();
	c->user = &ctx;
	status = (int64_t)user_enter(&ctx, (uint64_t)u_start,
				     (uint64_t)u_stack_top, (uint64_t)main,
				     arg);
	c->user = NULL;
	write_rflags(flags);
	return status;
}

void user_exit_current(int64_t status)
{
	struct user_context *ctx = this_cpu()->user;

	if (!ctx) {
		kprintf("user: exit with no user program running\n");
		kernel_exit(DMALAB_EXIT_EXCEPTION);
	}
	user_leave(ctx, status);
}
