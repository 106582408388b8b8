/* Tiny TAP producer for the unit tests (meson reads TAP). Header-only. */
#ifndef DTH_TAP_H
#define DTH_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                              \
	do {                                                                                       \
		int tap_ok_ = !!(cond); /* evaluated once */                                       \
		tap_n++;                                                                           \
		if (tap_ok_) {                                                                     \
			printf("ok %d - ", tap_n);                                                 \
		} else {                                                                           \
			tap_failed++;                                                              \
			printf("not ok %d - ", tap_n);                                             \
		}                                                                                  \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		if (!tap_ok_)                                                                      \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
		fflush(stdout);                                                                    \
	} while (0)

#define is_str(a, b, ...)                                                                          \
	do {                                                                                       \
		const char *tap_a_ = (a), *tap_b_ = (b);                                           \
		int tap_eq_ = tap_a_ && tap_b_ && strcmp(tap_a_, tap_b_) == 0;                     \
		ok(tap_eq_, __VA_ARGS__);                                                          \
		if (!tap_eq_)                                                                      \
			printf("#   got:      '%s'\n#   expected: '%s'\n",                         \
			       tap_a_ ? tap_a_ : "(null)", tap_b_ ? tap_b_ : "(null)");            \
	} while (0)

#define is_int(a, b, ...)                                                                          \
	do {                                                                                       \
		long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                        \
		ok(tap_a_ == tap_b_, __VA_ARGS__);                                                 \
		if (tap_a_ != tap_b_)                                                              \
			printf("#   got: %lld expected: %lld\n", tap_a_, tap_b_);                  \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
