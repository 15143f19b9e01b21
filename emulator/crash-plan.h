/*
 * crash-plan.h - the plan of a crash check (crash/plan-NAME-FS.txt): every
 * crash state of a scenario's checkpoints and crash points, which of them
 * are the same bytes, and which are checked. Written by `daxlab-crash
 * plan`, read by `daxlab-crash feed|image` and by the judge: one format,
 * one reader. A header line, then one line per state, in log order:
 *   SEQ REC CHECKPOINT KIND STATE PENDING WRITTEN REP CHECK PREV
 * REC is the checkpoint's ordinal in the log, KIND m (marked checkpoint)
 * or p (crash point), STATE the state number at it (cs_pick), WRITTEN how
 * many pending entries it writes back, REP the first state with the same
 * bytes (itself when unique), CHECK c (checked), f (folded into REP) or d
 * (unique, over --max-states: dropped), PREV the marked checkpoint at or
 * before it. Lines starting with '#' after the header are comments.
 */
#ifndef DAXLAB_CRASH_PLAN_H
#define DAXLAB_CRASH_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* More states than this in one plan: the log asks too much. */
#define CRASH_PLAN_MAX_STATES 1000000u

struct crash_plan_params {
	unsigned subsets, samples, point_samples, max_states;
	uint64_t seed;
};

struct crash_plan_state {
	uint64_t seq, rec, cp, k, rep, prev;
	uint32_t n, written;
	char kind, check;
};

void crash_plan_write_header(FILE *f, const struct crash_plan_params *pp);
void crash_plan_write_state(FILE *f, const struct crash_plan_state *s);
/* The header line: true when it is one (and its subsets are in bounds). */
bool crash_plan_header(const char *line, struct crash_plan_params *pp);
/*
 * The line of state number @seq: true when it is one, whole and in bounds
 * (its REP no later than itself, KIND and CHECK known letters).
 */
bool crash_plan_state(const char *line, uint64_t seq, struct crash_plan_state *s);

#endif
