#include "common/compat.h"

#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM to its
 * "DEVICE:INODE"): then each line starts with the syslog priority, "<3>",
 * which journald reads as the message's level and strips. */
static bool to_journal(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	known = 0;
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		known = 1;
	return known;
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
	static const int priority[] = {3, 4, 6, 7}; /* err, warning, info, debug */
	pthread_mutex_lock(&log_lock);
	if (to_journal())
		fprintf(stderr, "<%d>%s: %s\n", priority[level], level_names[level], line);
	else
		fprintf(stderr, "dth: %s: %s\n", level_names[level], line);
	pthread_mutex_unlock(&log_lock);
}
