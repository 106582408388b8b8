/* The agent's HTTP API (see api.h). Routes:
 *   GET|HEAD /, /index.html, /js/..., ...      the console's files (no token)
 *   GET  /healthz                              (no token)
 *   GET  /metrics
 *   GET  /api/v1/agent
 *   POST /api/v1/agent/actions/check-remotes   (202: the checks go on in the background)
 *   GET  /api/v1/settings                      the task settings (tdschema.h)
 *   GET  /api/v1/tasks              POST /api/v1/tasks        (?dry_run=true)
 *   GET|PUT|DELETE /api/v1/tasks/NAME          (PUT ?dry_run=true, DELETE ?purge=true)
 *   POST /api/v1/tasks/NAME/actions/{start,stop,run,retry}
 *   GET  /api/v1/tasks/NAME/runs?before=SEQ&limit=N
 *   GET  /api/v1/tasks/NAME/objects?status=S&after=CURSOR&limit=N
 *   GET  /api/v1/tasks/NAME/failures?after=CURSOR&limit=N
 *   GET  /api/v1/tasks/NAME/images?after=CURSOR&limit=N
 *   GET  /api/v1/tasks/NAME/series                 (series.h)
 *   GET  /api/v1/tasks/NAME/events                 the recent events (evring.h)
 *   POST /api/v1/tasks/NAME/events                (token, ?secret= or X-Dth-Signature)
 * NAME is percent-encoded in the path (it may hold '/'). Cursors are opaque
 * to clients (URL-safe base64 of the last key). */
#include "common/compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "agent/console.h"
#include "agent/mounts.h"
#include "agent/service.h"
#include "agent/taskdef.h"
#include "agent/tdschema.h"
#include "agent/tasklist.h"
#include "agent/token.h"
#include "common/buf.h"
#include "common/secret.h"
#include "common/uri.h"
#include "common/util.h"
#include "manifest/manifest.h"

#define PAGE_DEFAULT 100
#define RUNS_DEFAULT 20

static void send_json(struct httpd_resp *resp, int status, json_t *j)
{
	resp->status = status;
	resp->content_type = "application/json";
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (s) {
		buf_adds(&resp->body, s);
		buf_addch(&resp->body, '\n');
		free(s);
	}
	json_decref(j);
}

/* The error of a service call: its errno as a status and a code. */
static void send_err(struct httpd_resp *resp, int rc, const char *field, const char *msg)
{
	int status = 500;
	const char *code = "internal";
	switch (rc) {
	case -ENOENT:
		status = 404, code = "not_found";
		break;
	case -EEXIST:
		status = 409, code = "conflict";
		break;
	case -EBUSY:
		status = 409, code = "busy";
		break;
	case -EROFS:
		status = 409, code = "read_only";
		break;
	case -EINVAL:
	case -ERANGE:
	case -EPERM:
		status = 400, code = "invalid";
		break;
	case -EFBIG:
		status = 413, code = "too_large";
		break;
	}
	httpd_resp_error(resp, status, code, field, "%s", msg && *msg ? msg : strerror(-rc));
}

/* ---- webhook events: POST /api/v1/tasks/NAME/events ----
 * Senders that cannot hold the agent's token (radosgw topics, registries
 * configured by others) may prove themselves with the task's own secret,
 * derived from the token (token_derive "events:NAME"; `dth task webhook`
 * prints it): in the query (?secret=HEX) or as an HMAC-SHA256 of the body
 * (X-Dth-Signature: sha256=HEX). */

#define SIGNATURE_HEADER "X-Dth-Signature"

static int task_path(const char *raw, struct buf *name, const char **rest);

/* The task name of an events path, or false. */
static bool events_path(const struct httpd_req *req, struct buf *name)
{
	const char *rest;
	return !strcmp(req->method, "POST") && str_startswith(req->raw_path, "/api/v1/tasks/") &&
	       task_path(req->raw_path, name, &rest) == 0 && !strcmp(rest, "/events");
}

/* Whether the request proves the task's secret (with the body when signed). */
static bool events_secret_ok(const struct api *a, const struct httpd_req *req, const char *name,
			     bool with_body)
{
	struct buf purpose = BUF_INIT, given = BUF_INIT;
	buf_addf(&purpose, "events:%s", name);
	char secret[TOKEN_HEX_LEN + 1];
	token_derive(a->token, purpose.data, secret);
	bool ok = httpd_query(req, "secret", &given) == 0 && token_secret_equal(secret, given.data);
	const char *sig = httpd_header(req, SIGNATURE_HEADER);
	if (!ok && sig)
		ok = !with_body || token_hmac_check(secret, req->body, req->body_len, sig);
	secret_wipe(secret, sizeof(secret));
	if (given.data)
		secret_wipe(given.data, given.len);
	buf_release(&given);
	buf_release(&purpose);
	return ok;
}

static void events_post(struct api *a, const char *name, const struct httpd_req *req,
			struct httpd_resp *resp)
{
	if (!token_check(a->token, httpd_header(req, "Authorization")) &&
	    !events_secret_ok(a, req, name, true)) {
		httpd_resp_error(resp, 401, "unauthorized", NULL,
				 "the token, the task's secret or a valid " SIGNATURE_HEADER
				 " is needed");
		return;
	}
	json_t *out = NULL;
	struct dth_err err;
	err_clear(&err);
	int rc = service_task_events(a->service, name, req->body, req->body_len, &out, &err);
	if (rc == -EPERM) {
		httpd_resp_error(resp, 409, "no_webhook", "events", "%s", err.message);
		return;
	}
	if (rc)
		send_err(resp, rc == -ENODATA ? -ENOENT : rc, rc == -EINVAL ? "body" : NULL,
			 err.message);
	else
		send_json(resp, 202, out);
}

/* A GET or HEAD of a file of the console (served without the token). */
static bool console_path(const struct api *a, const struct httpd_req *req)
{
	return a->console && (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD")) &&
	       console_find(req->path);
}

void api_early(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct api *a = ctx;
	if (!strcmp(req->path, "/healthz") || console_path(a, req))
		return;
	if (token_check(a->token, httpd_header(req, "Authorization")))
		return;
	struct buf name = BUF_INIT;
	bool pass = events_path(req, &name) && events_secret_ok(a, req, name.data, false);
	buf_release(&name);
	if (pass)
		return; /* a signature is checked with the body */
	httpd_resp_error(resp, 401, "unauthorized", NULL,
			 "a bearer token is needed (the agent's is in STATE_DIR/agent.token)");
	if (httpd_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"dth\""))
		resp->status = 401;
}

/* ---- paths ---- */

/* Split raw "/api/v1/tasks/NAME/rest...": the decoded NAME and what
 * follows (raw, "" or "/..."). -EINVAL for a bad escape or a NUL. */
static int task_path(const char *raw, struct buf *name, const char **rest)
{
	const char *p = raw + strlen("/api/v1/tasks/");
	const char *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	*rest = p + n;
	if (!n || uri_decode(name, p, n) || memchr(name->data, 0, name->len))
		return -EINVAL;
	return 0;
}

static int query_uint(const struct httpd_req *req, const char *key, uint64_t max, uint64_t *out,
		      struct httpd_resp *resp)
{
	struct buf v = BUF_INIT;
	int rc = httpd_query(req, key, &v);
	if (rc == -ENOENT) {
		buf_release(&v);
		return 0;
	}
	uint64_t n;
	rc = rc ? rc : parse_u64(v.data, &n);
	buf_release(&v);
	if (rc || n > max) {
		httpd_resp_error(resp, 400, "invalid", key, "%s: a whole number up to %llu", key,
				 (unsigned long long)max);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

/* A boolean query parameter (absent: false); -EINVAL once answered 400. */
static int query_bool(const struct httpd_req *req, const char *key, bool *out,
		      struct httpd_resp *resp)
{
	struct buf v = BUF_INIT;
	*out = false;
	int rc = httpd_query(req, key, &v) == 0 && parse_bool(v.data, out) ? -EINVAL : 0;
	buf_release(&v);
	if (rc)
		httpd_resp_error(resp, 400, "invalid", key, "%s: true or false", key);
	return rc;
}

/* ---- cursors: URL-safe base64 of a key ---- */

static void cursor_encode(const char *key, size_t len, struct buf *out)
{
	char *b = xmalloc(4 * (len / 3 + 2) + 1);
	base64_encode((const unsigned char *)key, len, b);
	for (char *p = b; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=')
			*p = '\0';
	}
	buf_adds(out, b);
	free(b);
}

static int cursor_decode(const char *c, struct buf *out)
{
	size_t n = strlen(c);
	if (n > 8192)
		return -EINVAL;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++)
		buf_addch(&b, c[i] == '-' ? '+' : c[i] == '_' ? '/' : c[i]);
	while (b.len % 4)
		buf_addch(&b, '=');
	unsigned char *raw = xmalloc(n + 1);
	int got = base64_decode(b.data ? b.data : "", b.len, raw, n + 1);
	buf_release(&b);
	if (got > 0)
		buf_add(out, raw, (size_t)got);
	free(raw);
	return got > 0 ? 0 : -EINVAL;
}

/* ---- tasks ---- */

static json_t *parse_body(const struct httpd_req *req, struct httpd_resp *resp)
{
	json_error_t jerr;
	json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		httpd_resp_error(resp, 400, "bad_request", NULL,
				 "the body is not JSON: %s (line %d)", jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		httpd_resp_error(resp, 400, "bad_request", NULL, "the body is not a JSON object");
		return NULL;
	}
	return j;
}

static void tasks_root(struct api *a, const struct httpd_req *req, struct httpd_resp *resp)
{
	if (!strcmp(req->method, "GET")) {
		if (tasklist_text(a->list, &resp->body)) {
			httpd_resp_error(resp, 500, "internal", NULL, "out of memory");
			return;
		}
		resp->status = 200;
		resp->content_type = "application/json";
		return;
	}
	if (strcmp(req->method, "POST")) {
		httpd_resp_error(resp, 405, "method", NULL, "GET or POST");
		return;
	}
	bool dry;
	if (query_bool(req, "dry_run", &dry, resp))
		return;
	json_t *j = parse_body(req, resp);
	if (!j)
		return;
	json_t *out = NULL;
	struct dth_err err;
	err_clear(&err);
	const char *field = NULL;
	int rc = service_task_create(a->service, j, dry, &out, &err, &field);
	if (rc)
		send_err(resp, rc, field, err.message);
	else
		send_json(resp, dry ? 200 : 201, out);
	json_decref(j);
}

static void task_one(struct api *a, const char *name, const struct httpd_req *req,
		     struct httpd_resp *resp)
{
	json_t *out = NULL;
	struct dth_err err;
	err_clear(&err);
	const char *field = NULL;
	int rc;
	if (!strcmp(req->method, "GET")) {
		rc = service_task_json(a->service, name, &out);
	} else if (!strcmp(req->method, "PUT")) {
		bool dry;
		json_t *j = query_bool(req, "dry_run", &dry, resp) ? NULL : parse_body(req, resp);
		if (!j)
			return;
		rc = service_task_update(a->service, name, j, dry, &out, &err, &field);
		json_decref(j);
	} else if (!strcmp(req->method, "DELETE")) {
		bool purge;
		if (query_bool(req, "purge", &purge, resp))
			return;
		rc = service_task_delete(a->service, name, purge, &err);
		if (!rc)
			out = json_pack("{s:s, s:b}", "deleted", name, "purge", purge);
	} else {
		httpd_resp_error(resp, 405, "method", NULL, "GET, PUT or DELETE");
		return;
	}
	if (rc)
		send_err(resp, rc, field, err.message);
	else
		send_json(resp, 200, out);
}

static void task_action(struct api *a, const char *name, const char *action,
			const struct httpd_req *req, struct httpd_resp *resp)
{
	if (strcmp(req->method, "POST")) {
		httpd_resp_error(resp, 405, "method", NULL, "POST");
		return;
	}
	json_t *out = NULL;
	struct dth_err err;
	err_clear(&err);
	int rc = service_task_action(a->service, name, action, &out, &err);
	if (rc)
		send_err(resp, rc, rc == -ENOENT && strstr(err.message, "action") ? "action" : NULL,
			 err.message);
	else
		send_json(resp, 202, out);
}

/* ---- runs ---- */

struct runs_page {
	json_t *list;
	uint64_t last;
};

static int run_one(void *ctx, const struct run_record *rec)
{
	struct runs_page *p = ctx;
	json_array_append_new(p->list, service_run_json(rec));
	p->last = rec->seq;
	return 0;
}

static void task_runs(struct api *a, uint32_t id, const struct httpd_req *req,
		      struct httpd_resp *resp)
{
	uint64_t before = 0, limit = RUNS_DEFAULT;
	if (query_uint(req, "before", UINT64_MAX, &before, resp) ||
	    query_uint(req, "limit", MANIFEST_RUNS_KEPT, &limit, resp))
		return;
	if (!limit)
		limit = RUNS_DEFAULT;
	struct runs_page p = {json_array(), 0};
	int rc = manifest_run_each(a->manifest, id, before, (unsigned)limit, run_one, &p);
	if (rc) {
		json_decref(p.list);
		send_err(resp, rc, NULL, NULL);
		return;
	}
	bool more = json_array_size(p.list) == limit && p.last > 1;
	send_json(resp, 200,
		  json_pack("{s:o, s:o}", "runs", p.list, "next",
			    more ? json_integer((json_int_t)p.last) : json_null()));
}

/* ---- objects and images, a page at a time ---- */

static json_t *key_json(const char *key, size_t len)
{
	struct buf b = BUF_INIT;
	buf_add_text(&b, key, len);
	json_t *j = json_stringn(buf_str(&b), b.len);
	buf_release(&b);
	return j;
}

static int obj_one(void *ctx, const char *key, size_t len, const struct obj_record *r)
{
	json_t *o =
	    json_pack("{s:o, s:I, s:s, s:s, s:I, s:s?, s:s?, s:o}", "key", key_json(key, len),
		      "size", (json_int_t)r->size, "etag", r->etag, "status",
		      obj_status_name(r->status) ? obj_status_name(r->status) : "?", "attempts",
		      (json_int_t)r->attempts, "error", r->last_error[0] ? r->last_error : NULL,
		      "dest_etag", r->dest_etag[0] ? r->dest_etag : NULL, "transferred_at",
		      r->transferred_at ? json_integer(r->transferred_at) : json_null());
	if (!utf8_valid(key, len) || memchr(key, 0, len)) {
		struct buf c = BUF_INIT;
		cursor_encode(key, len, &c);
		json_object_set_new(o, "key_base64url", json_string(c.data));
		buf_release(&c);
	}
	json_array_append_new(ctx, o);
	return 0;
}

static void task_objects(struct api *a, uint32_t id, int status, const struct httpd_req *req,
			 struct httpd_resp *resp)
{
	uint64_t limit = PAGE_DEFAULT;
	if (query_uint(req, "limit", MANIFEST_PAGE_MAX, &limit, resp))
		return;
	if (!limit)
		limit = PAGE_DEFAULT;
	struct buf s = BUF_INIT, after = BUF_INIT, next = BUF_INIT;
	if (status == -2) { /* from the query */
		status = -1;
		if (!httpd_query(req, "status", &s) && (status = obj_status_parse(s.data)) < 0) {
			httpd_resp_error(
			    resp, 400, "invalid", "status",
			    "status: pending, copying, done, failed, skipped or deleted");
			goto out;
		}
	}
	buf_reset(&s);
	bool have_after = !httpd_query(req, "after", &s);
	if (have_after && cursor_decode(s.data, &after)) {
		httpd_resp_error(resp, 400, "invalid", "after", "after: not a cursor of this API");
		goto out;
	}
	json_t *list = json_array();
	bool more = false;
	int rc = manifest_obj_page(a->manifest, id, status, have_after ? after.data : NULL,
				   after.len, (unsigned)limit, obj_one, list, &next, &more);
	if (rc < 0) {
		json_decref(list);
		send_err(resp, rc, NULL, NULL);
		goto out;
	}
	json_t *cur = json_null();
	if (more) {
		buf_reset(&s);
		cursor_encode(next.data, next.len, &s);
		json_decref(cur);
		cur = json_string(s.data);
	}
	send_json(resp, 200, json_pack("{s:o, s:o}", "objects", list, "next", cur));
out:
	buf_release(&s);
	buf_release(&after);
	buf_release(&next);
}

static json_t *image_json(const char *ref, size_t len, const struct image_record *r)
{
	return json_pack("{s:o, s:s, s:s?, s:s, s:I, s:s?, s:o}", "ref", key_json(ref, len),
			 "src_digest", r->src_digest, "dst_digest",
			 r->dst_digest[0] ? r->dst_digest : NULL, "status",
			 obj_status_name(r->status) ? obj_status_name(r->status) : "?", "attempts",
			 (json_int_t)r->attempts, "error", r->last_error[0] ? r->last_error : NULL,
			 "copied_at", r->copied_at ? json_integer(r->copied_at) : json_null());
}

static void task_images(struct api *a, uint32_t id, const struct httpd_req *req,
			struct httpd_resp *resp)
{
	uint64_t limit = PAGE_DEFAULT;
	if (query_uint(req, "limit", MANIFEST_PAGE_MAX, &limit, resp))
		return;
	if (!limit)
		limit = PAGE_DEFAULT;
	struct buf s = BUF_INIT, after = BUF_INIT;
	bool have_after = !httpd_query(req, "after", &s);
	if (have_after && cursor_decode(s.data, &after)) {
		httpd_resp_error(resp, 400, "invalid", "after", "after: not a cursor of this API");
		buf_release(&s);
		buf_release(&after);
		return;
	}
	struct dth_err err;
	err_clear(&err);
	struct manifest_cursor *c = manifest_cursor_new(a->manifest, MANIFEST_IMAGES, id, NULL,
							have_after ? after.data : NULL, &err);
	json_t *list = json_array();
	const char *ref;
	size_t len;
	struct image_record r;
	int rc = c ? 0 : -EIO;
	bool more = false;
	buf_reset(&s);
	while (c && (rc = manifest_cursor_next_image(c, &ref, &len, &r)) == 1) {
		if (have_after && len == after.len && !memcmp(ref, after.data, len))
			continue;
		if (json_array_size(list) == limit) {
			more = true;
			break;
		}
		json_array_append_new(list, image_json(ref, len, &r));
		buf_reset(&s);
		cursor_encode(ref, len, &s);
	}
	manifest_cursor_free(c);
	if (rc < 0) {
		json_decref(list);
		send_err(resp, rc, NULL, err.message);
	} else {
		send_json(resp, 200,
			  json_pack("{s:o, s:o}", "images", list, "next",
				    more ? json_string(s.data) : json_null()));
	}
	buf_release(&s);
	buf_release(&after);
}

/* GET of a task's recent history, kept in memory (no manifest record
 * needed): its time series or its events. */
static void task_history(struct api *a, const char *name, const struct httpd_req *req,
			 struct httpd_resp *resp,
			 int (*fn)(struct service *s, const char *name, json_t **out))
{
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		httpd_resp_error(resp, 405, "method", NULL, "GET");
		return;
	}
	json_t *out = NULL;
	int rc = fn(a->service, name, &out);
	if (rc)
		send_err(resp, rc, NULL, NULL);
	else
		send_json(resp, 200, out);
}

/* /api/v1/tasks/NAME[/...] */
static void task_route(struct api *a, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct buf name = BUF_INIT;
	const char *rest;
	if (task_path(req->raw_path, &name, &rest)) {
		httpd_resp_error(resp, 400, "bad_request", NULL, "a task name in the path");
		goto out;
	}
	if (!*rest) {
		task_one(a, name.data, req, resp);
		goto out;
	}
	if (!strcmp(rest, "/events") && !strcmp(req->method, "POST")) {
		events_post(a, name.data, req, resp);
		goto out;
	}
	if (str_startswith(rest, "/actions/") && !strchr(rest + 9, '/')) {
		task_action(a, name.data, rest + 9, req, resp);
		goto out;
	}
	if (!strcmp(rest, "/series") || !strcmp(rest, "/events")) {
		task_history(a, name.data, req, resp,
			     rest[1] == 's' ? service_task_series : service_task_events_log);
		goto out;
	}
	uint32_t id;
	int kind;
	int rc = service_task_id(a->service, name.data, &id, &kind);
	if (rc) {
		send_err(resp, rc == -ENODATA ? -ENOENT : rc, NULL,
			 rc == -ENODATA ? "the task has no records (its definition is broken)"
					: NULL);
		goto out;
	}
	if (strcmp(req->method, "GET")) {
		httpd_resp_error(resp, 405, "method", NULL, "GET");
		goto out;
	}
	if (!strcmp(rest, "/runs"))
		task_runs(a, id, req, resp);
	else if (!strcmp(rest, "/objects"))
		task_objects(a, id, -2, req, resp);
	else if (!strcmp(rest, "/failures"))
		task_objects(a, id, OBJ_FAILED, req, resp);
	else if (!strcmp(rest, "/images"))
		task_images(a, id, req, resp);
	else
		httpd_resp_error(resp, 404, "not_found", NULL, "no such path");
out:
	buf_release(&name);
}

/* POST /api/v1/agent/actions/check-remotes */
static void agent_check_remotes(struct api *a, const struct httpd_req *req, struct httpd_resp *resp)
{
	if (strcmp(req->method, "POST")) {
		httpd_resp_error(resp, 405, "method", NULL, "POST");
		return;
	}
	json_t *out = NULL;
	int rc = service_check_remotes(a->service, &out);
	if (rc)
		send_err(resp, rc, NULL, rc == -ECANCELED ? "the agent is stopping" : NULL);
	else
		send_json(resp, 202, out);
}

void api_handle(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct api *a = ctx;
	const char *p = req->path;
	bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
	if (console_path(a, req) && console_serve(req, resp))
		return;
	if (!strcmp(p, "/healthz") && get) {
		send_json(resp, 200, json_pack("{s:s}", "status", "ok"));
	} else if (!strcmp(p, "/metrics") && get) {
		resp->status = 200;
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		service_metrics(a->service, &resp->body);
	} else if (!strcmp(p, "/api/v1/agent/actions/check-remotes")) {
		agent_check_remotes(a, req, resp);
	} else if (!strcmp(p, "/api/v1/settings") && get) {
		send_json(resp, 200, tdschema_json());
	} else if (!strcmp(p, "/api/v1/agent") && get) {
		json_t *j = service_agent_json(a->service);
		json_object_set_new(j, "mounts", mounts_json(a->mounts));
		send_json(resp, 200, j);
	} else if (!strcmp(req->raw_path, "/api/v1/tasks")) {
		tasks_root(a, req, resp);
	} else if (str_startswith(req->raw_path, "/api/v1/tasks/")) {
		task_route(a, req, resp);
	} else if (!strcmp(p, "/healthz") || !strcmp(p, "/metrics") ||
		   !strcmp(p, "/api/v1/agent") || !strcmp(p, "/api/v1/settings")) {
		httpd_resp_error(resp, 405, "method", NULL, "GET");
	} else {
		httpd_resp_error(resp, 404, "not_found", NULL, "no such path");
	}
}
