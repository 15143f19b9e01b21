/* crash-plan.c - writing and reading crash plans (see crash-plan.h). */
#include "crash-plan.h"

#include <inttypes.h>
#include <string.h>

#include "crash-states.h"

#define HEADER "# daxlab-crash plan"

void crash_plan_write_header(FILE *f, const struct crash_plan_params *pp)
{
	fprintf(f,
	        HEADER " subsets=%u samples=%u point_samples=%u seed=%" PRIu64 " max_states=%u\n",
	        pp->subsets, pp->samples, pp->point_samples, pp->seed, pp->max_states);
}

void crash_plan_write_state(FILE *f, const struct crash_plan_state *s)
{
	fprintf(f,
	        "%" PRIu64 " %" PRIu64 " %" PRIu64 " %c %" PRIu64 " %u %u %" PRIu64 " %c %" PRIu64
	        "\n",
	        s->seq, s->rec, s->cp, s->kind, s->k, s->n, s->written, s->rep, s->check, s->prev);
}

bool crash_plan_header(const char *line, struct crash_plan_params *pp)
{
	return sscanf(line,
	              HEADER " subsets=%u samples=%u point_samples=%u seed=%" SCNu64
	                     " max_states=%u",
	              &pp->subsets, &pp->samples, &pp->point_samples, &pp->seed,
	              &pp->max_states) == 5 &&
	       pp->subsets <= CS_MAX_SUBSETS;
}

bool crash_plan_state(const char *line, uint64_t seq, struct crash_plan_state *s)
{
	return sscanf(line,
	              "%" SCNu64 " %" SCNu64 " %" SCNu64 " %c %" SCNu64 " %u %u %" SCNu64
	              " %c %" SCNu64,
	              &s->seq, &s->rec, &s->cp, &s->kind, &s->k, &s->n, &s->written, &s->rep,
	              &s->check, &s->prev) == 10 &&
	       s->seq == seq && seq < CRASH_PLAN_MAX_STATES && s->rep <= s->seq &&
	       strchr("mp", s->kind) && s->kind && strchr("cfd", s->check) && s->check;
}
