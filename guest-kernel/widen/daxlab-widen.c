// SPDX-License-Identifier: GPL-2.0
/*
 * daxlab-widen - widen race windows in the guest kernel with kprobes.
 *
 * Races between page faults and truncate are a few instructions wide; under
 * TCG they almost never line up by chance. This module puts a kprobe at
 * the entry of each named kernel function and, when a task whose name
 * starts with @comm (the scenario's binary) gets there, busy-waits a
 * seeded pseudo-random number of microseconds in [0, delay_us]. The other
 * threads of the scenario run on meanwhile, so a fault that would have
 * finished before the truncate now overlaps it.
 *
 *   insmod daxlab-widen.ko points=dax_iomap_pte_fault,truncate_pagecache \
 *          delay_us=200 seed=7 comm=010-fault-vs-
 *
 * Points that cannot be probed (inlined, notrace, not in this kernel) are
 * reported and skipped; at least one must register. At unload the module
 * prints per point how many times it delayed and for how long in total:
 *   daxlab-widen: point dax_iomap_pte_fault: 812 delays, 80411 us
 */
#include <linux/delay.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

#define MAX_POINTS 8

static char *points = "";
module_param(points, charp, 0444);
MODULE_PARM_DESC(points, "comma-separated kernel functions to delay at");
static uint delay_us = 200;
module_param(delay_us, uint, 0444);
MODULE_PARM_DESC(delay_us, "largest delay, microseconds (default 200)");
static ulong seed = 1;
module_param(seed, ulong, 0444);
MODULE_PARM_DESC(seed, "seed of the delays");
static char *comm = "";
module_param(comm, charp, 0444);
MODULE_PARM_DESC(comm, "only delay tasks whose name starts with this (empty: all)");

/* One probed function: its kprobe and what it did. */
struct widen_point {
	struct kprobe kp;
	char name[KSYM_NAME_LEN];
	atomic64_t delays;
	atomic64_t total_us;
	bool registered;
};

static struct widen_point wpoints[MAX_POINTS];
static int npoints;
static atomic64_t rng_state;

/* splitmix64 over a shared counter: lock-free, seeded, good enough. */
static u64 next_random(void)
{
	u64 z = (u64)atomic64_add_return(0x9e3779b97f4a7c15ull, &rng_state);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int widen_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct widen_point *p = container_of(kp, struct widen_point, kp);
	size_t clen = strlen(comm);
	unsigned int us;

	if (clen && strncmp(current->comm, comm, min_t(size_t, clen, TASK_COMM_LEN - 1)))
		return 0;
	us = delay_us ? (unsigned int)(next_random() % (delay_us + 1)) : 0;
	if (us)
		udelay(us);
	atomic64_inc(&p->delays);
	atomic64_add(us, &p->total_us);
	return 0;
}

static void unregister_all(void)
{
	int i;

	for (i = 0; i < npoints; i++) {
		if (wpoints[i].registered)
			unregister_kprobe(&wpoints[i].kp);
		wpoints[i].registered = false;
	}
}

static int __init widen_init(void)
{
	char *list, *cur, *name;
	int ok = 0;

	atomic64_set(&rng_state, (s64)(seed * 0x9e3779b97f4a7c15ull + 1));
	list = kstrdup(points, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	cur = list;
	while ((name = strsep(&cur, ",")) && npoints < MAX_POINTS) {
		struct widen_point *p = &wpoints[npoints];
		int err;

		if (!*name)
			continue;
		strscpy(p->name, name, sizeof(p->name));
		p->kp.symbol_name = p->name;
		p->kp.pre_handler = widen_pre;
		npoints++;
		err = register_kprobe(&p->kp);
		if (err) {
			pr_warn("daxlab-widen: cannot probe %s: error %d, skipped\n", p->name, err);
			continue;
		}
		p->registered = true;
		ok++;
	}
	kfree(list);
	if (!ok) {
		pr_err("daxlab-widen: no point could be probed (points=%s)\n", points);
		unregister_all();
		return -EINVAL;
	}
	pr_info("daxlab-widen: %d of %d points, delays up to %u us, seed %lu, comm '%s'\n", ok,
	        npoints, delay_us, seed, comm);
	return 0;
}

static void __exit widen_exit(void)
{
	int i;

	for (i = 0; i < npoints; i++) {
		struct widen_point *p = &wpoints[i];

		if (!p->registered) {
			pr_info("daxlab-widen: point %s: not probed\n", p->name);
			continue;
		}
		unregister_kprobe(&p->kp);
		p->registered = false;
		pr_info("daxlab-widen: point %s: %lld delays, %lld us\n", p->name,
		        (long long)atomic64_read(&p->delays),
		        (long long)atomic64_read(&p->total_us));
	}
}

module_init(widen_init);
module_exit(widen_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("daxlab: seeded delays at named kernel functions to widen race windows");
