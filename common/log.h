/* The one logger. Levels are checked before formatting. Messages are lowercase
 * without a full stop. Never pass a secret (keys, tokens, signatures) to it. */
#ifndef DTH_LOG_H
#define DTH_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_threshold;

void log_set_level(int level);
/* Parse "error|warn|info|debug"; returns level or -1. */
int log_parse_level(const char *s);
/* Thread-safe; writes "dth: <level>: <message>\n" to stderr. */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                           \
	do {                                                                                       \
		if ((lvl) <= log_threshold)                                                        \
			log_write((lvl), __VA_ARGS__);                                             \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
