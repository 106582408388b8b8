/* The first header of every .c file in dth (tests and fuzz targets too).
 *
 * With -D_FORTIFY_SOURCE (Debian's default build flags), glibc's own headers
 * declare inline wrappers of strcpy, sprintf and the rest. The ban macros of
 * banned.h would rewrite those declarations, so the system headers that carry
 * them must be read first, and the bans come last. Including this header
 * first in every translation unit does that in one place; banned.h refuses to
 * be read without it. */
#ifndef DTH_COMPAT_H
#define DTH_COMPAT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wchar.h>

#include "common/banned.h"

#endif
