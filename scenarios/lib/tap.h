/*
 * tap.h - TAP output for daxlab guest programs (kselftest style).
 *
 * Every scenario prints TAP 13 on stdout, line buffered so that a crash
 * keeps the last line. A missing requirement is a SKIP: tap_skip_all()
 * prints "1..0 # SKIP reason" and exits with TAP_EXIT_SKIP (4).
 */
#ifndef DAXLAB_TAP_H
#define DAXLAB_TAP_H

#include <stdbool.h>

#define TAP_EXIT_PASS 0
#define TAP_EXIT_FAIL 1
#define TAP_EXIT_SKIP 4

/* Start the stream: header and plan of @count tests. */
void tap_plan(int count);
/* One test point; returns @ok so callers can chain. */
bool tap_ok(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A test point that did not run. */
void tap_skip(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A diagnostic line ("# ..."). */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Nothing can run: plan 1..0 with the reason, exit 4. */
__attribute__((noreturn)) void tap_skip_all(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Cannot go on: "Bail out!" and exit 1. */
__attribute__((noreturn)) void tap_bail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Check the plan was met; exit 0 if every point passed, else 1. */
__attribute__((noreturn)) void tap_finish(void);

#endif
