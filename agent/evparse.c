/* Parsing of S3 event notifications and docker-registry notifications
 * (evparse.h). Keys: AWS and MinIO send them form-encoded ("a+b%2Bc" is
 * "a b+c"); Ceph radosgw ("eventSource": "ceph:s3") sends them as they are. */
#include "common/compat.h"

#include "agent/evparse.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "common/buf.h"
#include "common/uri.h"

static const char *str_of(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));
	return s ? s : "";
}

static int body_load(const char *body, size_t len, json_t **out, struct dth_err *err)
{
	if (len > EVPARSE_BODY_MAX)
		return err_set(err, -EFBIG, "the body is %zu bytes, more than the %u allowed", len,
			       EVPARSE_BODY_MAX);
	json_error_t je;
	*out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return err_set(err, -EINVAL, "the body is not JSON: %s (line %d)", je.text,
			       je.line);
	if (!json_is_object(*out)) {
		json_decref(*out);
		return err_set(err, -EINVAL, "the body is not a JSON object");
	}
	return 0;
}

/* An object key as the record gives it. */
static int key_decode(const char *raw, bool form, struct buf *out)
{
	buf_reset(out);
	if (!form) {
		buf_adds(out, raw);
		return 0;
	}
	struct buf plus = BUF_INIT;
	for (const char *p = raw; *p; p++)
		buf_addch(&plus, *p == '+' ? ' ' : *p);
	int rc = uri_decode(out, plus.data ? plus.data : "", plus.len);
	buf_release(&plus);
	return rc;
}

static enum evparse_kind s3_kind(const char *name)
{
	if (!strncmp(name, "s3:", 3))
		name += 3;
	if (!strncmp(name, "ObjectCreated:", 14))
		return EV_CREATED;
	if (!strncmp(name, "ObjectRemoved:", 14))
		return EV_REMOVED;
	return 0;
}

/* The size and ETag a created object's record gives (size -1, etag "" when
 * absent or not plausible: a hint must not mislead). */
static void object_meta(const json_t *obj, enum evparse_kind kind, int64_t *size, char *etag,
			size_t etag_sz)
{
	*size = -1;
	etag[0] = '\0';
	const json_t *sz = json_object_get(obj, "size");
	const char *e = json_string_value(json_object_get(obj, "eTag"));
	if (kind != EV_CREATED || !json_is_integer(sz) || json_integer_value(sz) < 0 || !e)
		return;
	size_t n = strlen(e);
	if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
		e++;
		n -= 2;
	}
	if (!n || n >= etag_sz)
		return;
	for (size_t i = 0; i < n; i++)
		if (!((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'f') ||
		      (e[i] >= 'A' && e[i] <= 'F') || e[i] == '-'))
			return;
	memcpy(etag, e, n);
	etag[n] = '\0';
	*size = json_integer_value(sz);
}

/* One record: 1 given, 0 ignored, or an error. */
static int s3_record(const json_t *r, size_t i, struct buf *key,
		     int (*fn)(void *ctx, const struct evparse_item *it), void *ctx,
		     struct dth_err *err)
{
	if (!json_is_object(r))
		return err_set(err, -EINVAL, "Records[%zu] is not an object", i);
	enum evparse_kind kind = s3_kind(str_of(r, "eventName"));
	if (!kind)
		return 0;
	const json_t *s3 = json_object_get(r, "s3");
	const json_t *bucket = json_object_get(s3, "bucket");
	const json_t *obj = json_object_get(s3, "object");
	const char *bname = str_of(bucket, "name");
	const char *raw = json_string_value(json_object_get(obj, "key"));
	if (!*bname || !raw || !*raw)
		return err_set(err, -EINVAL, "Records[%zu]: no s3.bucket.name or s3.object.key", i);
	bool form = strcmp(str_of(r, "eventSource"), "ceph:s3") != 0;
	if (key_decode(raw, form, key) || !key->len)
		return err_set(err, -EINVAL, "Records[%zu]: s3.object.key is not URL-encoded", i);
	char etag[128];
	struct evparse_item it = {.kind = kind,
				  .bucket = bname,
				  .key = key->data,
				  .key_len = key->len,
				  .sequencer = str_of(obj, "sequencer"),
				  .host = "",
				  .etag = etag};
	object_meta(obj, kind, &it.size, etag, sizeof(etag));
	int rc = fn(ctx, &it);
	return rc ? rc : 1;
}

/* The records of an S3 event (possibly inside an SNS envelope). */
static int s3_records(json_t *root, json_t **inner, const json_t **records, struct dth_err *err)
{
	*inner = NULL;
	const char *msg = json_string_value(json_object_get(root, "Message"));
	if (msg && !strcmp(str_of(root, "Type"), "Notification")) {
		struct dth_err e;
		err_clear(&e);
		int rc = body_load(msg, strlen(msg), inner, &e);
		if (rc)
			return err_set(err, rc, "the SNS envelope's Message: %s", e.message);
		root = *inner;
	}
	*records = json_object_get(root, "Records");
	if (*records && !json_is_array(*records))
		return err_set(err, -EINVAL, "Records is not an array");
	if (!*records && strcmp(str_of(root, "Event"), "s3:TestEvent"))
		return err_set(err, -EINVAL, "neither an S3 event (Records) nor a test event");
	return 0;
}

int evparse_s3(const char *body, size_t len, int (*fn)(void *ctx, const struct evparse_item *it),
	       void *ctx, unsigned *ignored, struct dth_err *err)
{
	err_clear(err);
	json_t *root, *inner;
	const json_t *records = NULL;
	int rc = body_load(body, len, &root, err);
	if (rc)
		return rc;
	rc = s3_records(root, &inner, &records, err);
	struct buf key = BUF_INIT;
	int given = 0;
	for (size_t i = 0; !rc && i < json_array_size(records); i++) {
		rc = s3_record(json_array_get(records, i), i, &key, fn, ctx, err);
		if (rc == 0 && ignored)
			(*ignored)++;
		given += rc == 1;
		rc = rc == 1 ? 0 : rc;
	}
	buf_release(&key);
	json_decref(inner);
	json_decref(root);
	return rc ? rc : given;
}

/* One registry event: 1 given, 0 ignored, or an error. */
static int reg_event(const json_t *e, size_t i, int (*fn)(void *ctx, const struct evparse_item *it),
		     void *ctx, struct dth_err *err)
{
	if (!json_is_object(e))
		return err_set(err, -EINVAL, "events[%zu] is not an object", i);
	const json_t *target = json_object_get(e, "target");
	const char *repo = str_of(target, "repository");
	const char *tag = str_of(target, "tag");
	if (strcmp(str_of(e, "action"), "push") || !*tag)
		return 0;
	if (!*repo)
		return err_set(err, -EINVAL, "events[%zu]: no target.repository", i);
	struct evparse_item it = {.kind = EV_PUSHED,
				  .bucket = repo,
				  .key = tag,
				  .key_len = strlen(tag),
				  .sequencer = "",
				  .host = str_of(json_object_get(e, "request"), "host"),
				  .size = -1,
				  .etag = ""};
	int rc = fn(ctx, &it);
	return rc ? rc : 1;
}

int evparse_registry(const char *body, size_t len,
		     int (*fn)(void *ctx, const struct evparse_item *it), void *ctx,
		     unsigned *ignored, struct dth_err *err)
{
	err_clear(err);
	json_t *root;
	int rc = body_load(body, len, &root, err);
	if (rc)
		return rc;
	const json_t *events = json_object_get(root, "events");
	if (!json_is_array(events)) {
		json_decref(root);
		return err_set(err, -EINVAL, "not a registry notification (no events array)");
	}
	int given = 0;
	for (size_t i = 0; !rc && i < json_array_size(events); i++) {
		rc = reg_event(json_array_get(events, i), i, fn, ctx, err);
		if (rc == 0 && ignored)
			(*ignored)++;
		given += rc == 1;
		rc = rc == 1 ? 0 : rc;
	}
	json_decref(root);
	return rc ? rc : given;
}
