/*
 * plan.c - run.json, what run.sh planned for a run and saw on the host
 * (see protocol/README.md), read with jansson. Only what the parsers need
 * to check the guest against is taken here; the judge reads the rest.
 */
#include <jansson.h>
#include <string.h>

#include "collect.h"

static bool bin_ok(const char *bin, const char *name)
{
	/* NNN-name */
	return strlen(bin) == strlen(name) + 4 && bin[0] >= '0' && bin[0] <= '9' && bin[1] >= '0' &&
	       bin[1] <= '9' && bin[2] >= '0' && bin[2] <= '9' && bin[3] == '-' &&
	       !strcmp(bin + 4, name);
}

int plan_parse(const char *json, size_t n, struct plan *p, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr), *v, *item;
	const char *base;
	size_t i;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (!root)
		return errorf(err, errlen, "run.json: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root)) {
		errorf(err, errlen, "run.json is not an object");
		goto out;
	}
	v = json_object_get(root, "scenarios");
	if (!json_is_array(v) || json_array_size(v) > PLAN_MAX_SCENARIOS) {
		errorf(err, errlen, "run.json: scenarios must be a list of at most %d",
		       PLAN_MAX_SCENARIOS);
		goto out;
	}
	json_array_foreach(v, i, item)
	{
		const char *name = json_string_value(json_object_get(item, "name"));
		const char *bin = json_string_value(json_object_get(item, "bin"));

		if (!name || !bin || !daxlab_value_ok('N', name) || !bin_ok(bin, name) ||
		    plan_scenario(p, name) >= 0) {
			errorf(err, errlen,
			       "run.json: scenario %zu is not a unique name and NNN-name", i);
			goto out;
		}
		strcpy(p->scen[p->nscen].name, name);
		strcpy(p->scen[p->nscen].bin, bin);
		p->nscen++;
	}
	v = json_object_get(root, "fs");
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > PLAN_MAX_FS) {
		errorf(err, errlen, "run.json: fs must be a list of 1 to %d", PLAN_MAX_FS);
		goto out;
	}
	json_array_foreach(v, i, item)
	{
		const char *fs = json_string_value(item);

		if (!fs || !daxlab_fs_ok(fs) || plan_has_fs(p, fs)) {
			errorf(err, errlen,
			       "run.json: fs %zu is not ext4, xfs, ext2 or devdax, once", i);
			goto out;
		}
		strcpy(p->fs[p->nfs++], fs);
	}
	v = json_object_get(root, "plugin");
	if (!json_is_string(v) || json_string_length(v) >= sizeof(p->plugin)) {
		errorf(err, errlen, "run.json: no plugin");
		goto out;
	}
	strcpy(p->plugin, json_string_value(v));
	v = json_object_get(root, "crash_check");
	if (json_is_string(v) && json_string_length(v)) {
		if (plan_scenario(p, json_string_value(v)) < 0) {
			errorf(err, errlen, "run.json: crash_check is not a planned scenario");
			goto out;
		}
		strcpy(p->crash_check, json_string_value(v));
	}
	base = json_string_value(json_object_get(root, "pmem_base"));
	if (!base || !daxlab_value_ok('X', base)) {
		errorf(err, errlen, "run.json: pmem_base must be 0x...");
		goto out;
	}
	p->pmem_base = strtoull(base, NULL, 16);
	v = json_object_get(root, "pmem_bytes");
	if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
	    json_integer_value(v) % (1 << 20)) {
		errorf(err, errlen, "run.json: pmem_bytes must be a positive number of MiB");
		goto out;
	}
	p->pmem_bytes = (uint64_t)json_integer_value(v);
	v = json_object_get(root, "cpus");
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 255) {
		errorf(err, errlen, "run.json: cpus must be 1 to 255");
		goto out;
	}
	p->cpus = (unsigned)json_integer_value(v);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int plan_scenario(const struct plan *p, const char *name)
{
	for (unsigned i = 0; i < p->nscen; i++)
		if (!strcmp(p->scen[i].name, name))
			return (int)i;
	return -1;
}

bool plan_has_fs(const struct plan *p, const char *fs)
{
	for (unsigned i = 0; i < p->nfs; i++)
		if (!strcmp(p->fs[i], fs))
			return true;
	return false;
}
