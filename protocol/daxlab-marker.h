/*
 * daxlab-marker.h - how a guest program talks to the daxlab-pmem plugin.
 *
 * The marker is an 8-byte NOP, "nopl 0x4c584144(%rax,%rax,1)" (the
 * displacement spells "DAXL"), so a marked program runs unchanged on real
 * hardware or without the plugin. The plugin recognises the exact bytes at
 * translation time and reads the command from %rdi and its argument from
 * %rsi when the NOP executes.
 */
#ifndef DAXLAB_MARKER_H
#define DAXLAB_MARKER_H

#define DAXLAB_MARKER_BYTES 0x0f, 0x1f, 0x84, 0x00, 0x44, 0x41, 0x58, 0x4c
#define DAXLAB_MARKER_LEN 8

enum daxlab_mark {
	DAXLAB_MARK_WINDOW_BEGIN = 1, /* arg: window id; counters restart */
	DAXLAB_MARK_WINDOW_END = 2,   /* arg: window id; counters recorded */
	DAXLAB_MARK_CHECKPOINT = 3,   /* arg: checkpoint id; a crash state */
	DAXLAB_MARK_HIT = 4,          /* arg: guest CLOCK_MONOTONIC ns; a race hit */
	DAXLAB_MARK_STALL = 5,        /* arg: 0 suspends --latency-mode stall on this vCPU
	                                 (it then runs as under dram), 1 resumes it */
	DAXLAB_MARK_WATCH = 6,        /* the plugin's watch=marker starts watching here
	                                 (the guest agent, before the NV-DIMM drivers) */
	DAXLAB_MARK_CRASH_BEGIN = 7,  /* arg: window id; from here every fence (any vCPU,
	                                 kernel or user) that orders pending lines is a
	                                 crash point, taken before it drains them */
	DAXLAB_MARK_CRASH_END = 8,    /* arg: window id; no more crash points */
};

/* The checkpoint ids of crash points in the persistence log start here
 * (marked checkpoints are the scenarios' own, smaller numbers). */
#define DAXLAB_CRASH_POINT_BASE (1ull << 40)

#if defined(__x86_64__) && !defined(DAXLAB_MARKER_NO_INLINE)
static inline void daxlab_mark(unsigned long cmd, unsigned long arg)
{
	/* "memory": every access before the marker happens before it. */
	__asm__ volatile(".byte 0x0f, 0x1f, 0x84, 0x00, 0x44, 0x41, 0x58, 0x4c" ::"D"(cmd), "S"(arg)
	                 : "memory");
}
#endif

#endif
