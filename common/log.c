#include "common/compat.h"

#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

int log_threshold = LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_set_level(int level)
{
	log_threshold = level;
}

int log_parse_level(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "error"))
		return LOG_ERROR;
	if (!strcmp(s, "warn") || !strcmp(s, "warning"))
		return LOG_WARN;
	if (!strcmp(s, "info"))
		return LOG_INFO;
	if (!strcmp(s, "debug"))
		return LOG_DEBUG;
	return -1;
}

void log_write(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (level < 0)
		level = 0;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "dth: %s: %s\n", level_names[level], line);
	pthread_mutex_unlock(&log_lock);
}
