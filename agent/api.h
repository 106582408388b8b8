/* The agent's HTTP API: JSON under /api/v1/ (tasks, their actions, runs,
 * objects, failures and image records, the agent), /metrics (Prometheus
 * text) and /healthz; and the web console's files (console.h) on GET and HEAD
 * of their paths (/, /index.html, /js/..., /vendor/...) unless it is turned
 * off. Every other path but /healthz needs the bearer token. The
 * handlers only read snapshots and ask the service for changes: none waits
 * for a transfer. Bad input gets a JSON error naming the field at fault, and
 * a refused change changes nothing. */
#ifndef DTH_API_H
#define DTH_API_H

#include <stdbool.h>

#include "agent/httpd.h"

struct service;
struct token;
struct manifest;

struct mounts;
struct tasklist;
struct api {
	struct service *service; /* borrowed */
	struct manifest *manifest;
	const struct token *token; /* borrowed */
	struct mounts *mounts;	   /* borrowed; may be NULL */
	struct tasklist *list;	   /* borrowed: GET /api/v1/tasks */
	bool console;		   /* serve the console's files ([agent] console) */
};

/* httpd handlers; ctx is a struct api. early answers 401 before a body is
 * read; handle serves the request. */
void api_early(void *ctx, const struct httpd_req *req, struct httpd_resp *resp);
void api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp);

#endif
