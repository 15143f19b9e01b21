/*
 * daxlab-line.c - the grammar of daxlab-protocol.h: parse and check a
 * "# daxlab-*:" line, and a files-channel name. Shared by the guest's
 * emitter and the host's collector, so both hold lines to the same rules.
 * Plain C, no allocation.
 */
#include "daxlab-protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
	       c == '_' || c == ',' || c == ':' || c == '+' || c == '-';
}

/* What a scenario runs on: a filesystem, or devdax (run.sh --mode devdax). */
static const char *const fs_names[] = {"ext4", "xfs", "ext2", "devdax"};
#define NFS_NAMES (sizeof(fs_names) / sizeof(fs_names[0]))

bool daxlab_fs_ok(const char *fs)
{
	for (size_t i = 0; i < NFS_NAMES; i++)
		if (!strcmp(fs, fs_names[i]))
			return true;
	return false;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DAXLAB_CAP_NAME || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '-'))
			return false;
	return true;
}

bool daxlab_value_ok(char type, const char *s)
{
	size_t n = strlen(s), i = 0;

	switch (type) {
	case 'U': {
		unsigned long long v = 0;

		if (n == 0 || n > 16)
			return false;
		for (; i < n; i++) {
			if (!is_digit(s[i]))
				return false;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		return v <= DAXLAB_CAP_UINT;
	}
	case 'D': {
		size_t whole = 0, frac = 0;

		if (s[0] == '-')
			i++;
		while (i < n && is_digit(s[i]))
			i++, whole++;
		if (whole == 0 || whole > 12)
			return false;
		if (i == n)
			return true;
		if (s[i++] != '.')
			return false;
		while (i < n && is_digit(s[i]))
			i++, frac++;
		return i == n && frac >= 1 && frac <= 6;
	}
	case 'X':
		if (n < 3 || n > 18 || s[0] != '0' || s[1] != 'x')
			return false;
		for (i = 2; i < n; i++)
			if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
				return false;
		return true;
	case 'W':
		if (n == 0 || n > DAXLAB_CAP_WORD)
			return false;
		for (; i < n; i++)
			if (!is_word_char(s[i]))
				return false;
		return true;
	case 'N':
		return name_ok(s);
	case 'F':
		return daxlab_fs_ok(s);
	case 'S':
		return !strcmp(s, "pass") || !strcmp(s, "fail") || !strcmp(s, "skip") ||
		       !strcmp(s, "timeout");
	case 'B':
		return !strcmp(s, "0") || !strcmp(s, "1");
	case 'T':
		if (n > DAXLAB_CAP_TEXT)
			return false;
		for (; i < n; i++)
			if (s[i] < 0x20 || s[i] > 0x7e)
				return false;
		return true;
	default:
		return false;
	}
}

const struct daxlab_line_kind *daxlab_line_kind(const char *tag)
{
	for (size_t i = 0; i < DAXLAB_NLINES; i++)
		if (!strcmp(daxlab_lines[i].tag, tag))
			return &daxlab_lines[i];
	return NULL;
}

const char *daxlab_line_get(const struct daxlab_line *l, const char *key)
{
	for (unsigned i = 0; i < l->nfields; i++)
		if (!strcmp(l->field[i].key, key))
			return l->field[i].value;
	return NULL;
}

/* The next grammar word of @g into @key (its name), @type and @optional. */
static const char *grammar_next(const char *g, char *key, size_t keylen, char *type, bool *optional)
{
	size_t n = 0;

	while (*g == ' ')
		g++;
	if (!*g)
		return NULL;
	if (*g == '*') {
		key[0] = '*', key[1] = 0, *type = 'U', *optional = true;
		return g + 1;
	}
	while (*g && *g != '=' && n + 1 < keylen)
		key[n++] = *g++;
	key[n] = 0;
	*type = g[1];
	*optional = g[2] == '?';
	g += *optional ? 3 : 2;
	return g;
}

static bool extra_key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > 31)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || k[i] == '_'))
			return false;
	return true;
}

int daxlab_line_parse(char *buf, struct daxlab_line *out, char *err, size_t errlen)
{
	const struct daxlab_line_kind *kind = NULL;
	const char *g;
	char *p, *tag;
	size_t len = strlen(buf);

	memset(out, 0, sizeof(*out));
	if (len > DAXLAB_CAP_LINE)
		return fail(err, errlen, "a daxlab line longer than %d bytes", DAXLAB_CAP_LINE);
	if (strncmp(buf, "# daxlab-", 9))
		return fail(err, errlen, "not a daxlab line");
	tag = buf + 2;
	p = tag;
	while (*p && *p != ':' && *p != ' ')
		p++;
	if (*p == 0) {
		kind = daxlab_line_kind(tag);
		if (!kind)
			return fail(err, errlen, "unknown line kind");
		if (kind->grammar[0])
			return fail(err, errlen, "%s: fields missing", kind->tag);
		out->kind = kind;
		return 0;
	}
	if (p[0] != ':' || p[1] != ' ')
		return fail(err, errlen, "a daxlab line needs \"TAG: \"");
	*p = 0;
	p += 2;
	kind = daxlab_line_kind(tag);
	if (!kind)
		return fail(err, errlen, "unknown line kind");
	if (!kind->grammar[0])
		return fail(err, errlen, "%s takes no fields", kind->tag);
	out->kind = kind;
	g = kind->grammar;
	for (;;) {
		char gkey[32], type;
		bool optional;

		g = grammar_next(g, gkey, sizeof(gkey), &type, &optional);
		if (!g) {
			if (*p)
				return fail(err, errlen, "%s: more than its fields", kind->tag);
			return 0;
		}
		if (!*p) {
			if (optional)
				continue;
			return fail(err, errlen, "%s: no %s=", kind->tag, gkey);
		}
		if (!strcmp(gkey, "*")) {
			/* any further key=U pairs, to the end */
			while (*p) {
				char *eq = strchr(p, '='), *end;

				if (out->nfields >= DAXLAB_CAP_FIELDS)
					return fail(err, errlen, "%s: too many fields", kind->tag);
				if (!eq)
					return fail(err, errlen, "%s: a field without '='",
					            kind->tag);
				*eq = 0;
				end = strchr(eq + 1, ' ');
				if (end)
					*end = 0;
				if (!extra_key_ok(p) || !daxlab_value_ok('U', eq + 1))
					return fail(err, errlen, "%s: bad field", kind->tag);
				for (unsigned i = 0; i < out->nfields; i++)
					if (!strcmp(out->field[i].key, p))
						return fail(err, errlen, "%s: a field twice",
						            kind->tag);
				out->field[out->nfields].key = p;
				out->field[out->nfields++].value = eq + 1;
				p = end ? end + 1 : eq + 1 + strlen(eq + 1);
				if (end && !*p)
					return fail(err, errlen, "%s: a trailing space", kind->tag);
			}
			return 0;
		}
		size_t klen = strlen(gkey);

		if (strncmp(p, gkey, klen) || p[klen] != '=') {
			if (optional)
				continue;
			return fail(err, errlen, "%s: expected %s= here", kind->tag, gkey);
		}
		if (out->nfields >= DAXLAB_CAP_FIELDS)
			return fail(err, errlen, "%s: too many fields", kind->tag);
		char *value = p + klen + 1, *end;

		if (type == 'T') {
			end = value + strlen(value);
		} else {
			end = strchr(value, ' ');
			if (!end)
				end = value + strlen(value);
		}
		char saved = *end;

		*end = 0;
		if (!daxlab_value_ok(type, value))
			return fail(err, errlen, "%s: %s= is not a valid value", kind->tag, gkey);
		out->field[out->nfields].key = p;
		p[klen] = 0;
		out->field[out->nfields++].value = value;
		if (saved == ' ') {
			p = end + 1;
			if (!*p)
				return fail(err, errlen, "%s: a trailing space", kind->tag);
		} else {
			p = end;
		}
	}
}

/* ---------------------------------------------------------------- files */

/* Match @name against @pat; fills @out. */
static bool match(const char *pat, const char *name, struct daxlab_file_name *out)
{
	while (*pat) {
		if (pat[0] != '%') {
			if (*name++ != *pat++)
				return false;
			continue;
		}
		char spec = pat[1];
		const char *stop = pat + 2;
		size_t n = 0;

		pat += 2;
		if (spec == 'n') {
			unsigned v = 0;

			if (*name == '0')
				return false; /* one spelling per number */
			while (*name >= '0' && *name <= '9' && n < 3)
				v = v * 10 + (unsigned)(*name++ - '0'), n++;
			if (n == 0 || v < 1 || v > DAXLAB_WITNESS_FILES)
				return false;
			out->n = v;
			continue;
		}
		if (spec == 's') {
			/* a scenario name, then "-": the last '-' before the
			 * filesystem and the rest of the pattern */
			const char *rest = strchr(name, '/');
			const char *end = rest ? rest : name + strlen(name);
			const char *dash = NULL;

			for (const char *q = name; q < end; q++)
				if (*q == '-')
					dash = q;
			if (!dash || *stop != '-')
				return false;
			n = (size_t)(dash - name);
			if (n == 0 || n > DAXLAB_CAP_NAME)
				return false;
			memcpy(out->scenario, name, n);
			out->scenario[n] = 0;
			if (!name_ok(out->scenario))
				return false;
			name = dash;
			continue;
		}
		if (spec == 'f') {
			const char *const *fs = fs_names;
			bool found = false;

			for (size_t i = 0; i < NFS_NAMES && !found; i++) {
				size_t l = strlen(fs[i]);

				if (!strncmp(name, fs[i], l) && strncmp(name + l, pat, 1) == 0) {
					strcpy(out->fs, fs[i]);
					name += l;
					found = true;
				}
			}
			if (!found)
				return false;
			continue;
		}
		return false;
	}
	return *name == 0;
}

int daxlab_file_name_parse(const char *name, struct daxlab_file_name *out)
{
	if (strlen(name) > DAXLAB_CAP_FILE_NAME)
		return -1;
	for (size_t i = 0; i < DAXLAB_NFILES; i++) {
		memset(out, 0, sizeof(*out));
		if (match(daxlab_files[i].pattern, name, out)) {
			out->kind = &daxlab_files[i];
			return 0;
		}
	}
	memset(out, 0, sizeof(*out));
	return -1;
}
