#include "common/compat.h"

#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

void err_clear(struct dth_err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->http_status = 0;
	e->remote_code[0] = '\0';
	e->message[0] = '\0';
}

int err_set(struct dth_err *e, int code, const char *fmt, ...)
{
	if (!e)
		return code;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return code;
}

void err_prefix(struct dth_err *e, const char *fmt, ...)
{
	if (!e)
		return;
	char pre[sizeof(e->message)], old[sizeof(e->message)];
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->message, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	msg_snprintf(e->message, sizeof(e->message), "%s: %s", pre, old);
}
