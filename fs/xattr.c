/* Extended attribute blobs: build, list, find. */
#include "common/compat.h"

#include "fs/xattr.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "manifest/codec.h"
#include "remote/s3.h"

void xattr_add(struct buf *blob, const char *name, const void *value, size_t vlen)
{
	uint32_t n = (uint32_t)strlen(name), v = (uint32_t)vlen;
	buf_add(blob, &n, sizeof(n));
	buf_add(blob, name, n);
	buf_add(blob, &v, sizeof(v));
	buf_add(blob, value, vlen);
}

void xattr_build(struct buf *blob, const char *etag, const struct s3_object_head *h,
		 const struct obj_record *rec)
{
	if (etag && *etag)
		xattr_add(blob, "user.s3.etag", etag, strlen(etag));
	if (h) {
		if (h->meta.content_type)
			xattr_add(blob, "user.s3.content_type", h->meta.content_type,
				  strlen(h->meta.content_type));
		struct buf name = BUF_INIT;
		for (size_t i = 0; i < h->meta.n_user; i++) {
			buf_reset(&name);
			buf_adds(&name, "user.s3.meta.");
			buf_adds(&name, h->meta.user[i].name);
			xattr_add(blob, name.data, h->meta.user[i].value,
				  strlen(h->meta.user[i].value));
		}
		buf_release(&name);
	}
	if (rec) {
		const char *st = obj_status_name(rec->status);
		if (st)
			xattr_add(blob, "user.dth.status", st, strlen(st));
		if (rec->dest_etag[0])
			xattr_add(blob, "user.dth.dest_etag", rec->dest_etag,
				  strlen(rec->dest_etag));
	}
}

/* Step over one (name, value) pair at *off; -EPROTO when it does not fit. */
static int next_pair(const unsigned char *p, size_t len, size_t *off, const char **name,
		     uint32_t *nlen, const void **value, uint32_t *vlen)
{
	if (len - *off < sizeof(uint32_t))
		return -EPROTO;
	memcpy(nlen, p + *off, sizeof(*nlen));
	*off += sizeof(uint32_t);
	if (len - *off < *nlen)
		return -EPROTO;
	*name = (const char *)p + *off;
	*off += *nlen;
	if (len - *off < sizeof(uint32_t))
		return -EPROTO;
	memcpy(vlen, p + *off, sizeof(*vlen));
	*off += sizeof(uint32_t);
	if (len - *off < *vlen)
		return -EPROTO;
	*value = p + *off;
	*off += *vlen;
	return 0;
}

int xattr_names(const void *blob, size_t len, struct buf *out)
{
	size_t off = 0;
	while (off < len) {
		const char *name;
		const void *value;
		uint32_t nlen, vlen;
		int rc = next_pair(blob, len, &off, &name, &nlen, &value, &vlen);
		if (rc)
			return rc;
		buf_add(out, name, nlen);
		buf_addch(out, '\0');
	}
	return 0;
}

int xattr_find(const void *blob, size_t len, const char *want, const void **value, size_t *vlen)
{
	size_t off = 0, wlen = strlen(want);
	while (off < len) {
		const char *name;
		const void *v;
		uint32_t nlen, vl;
		int rc = next_pair(blob, len, &off, &name, &nlen, &v, &vl);
		if (rc)
			return rc;
		if (nlen == wlen && !memcmp(name, want, wlen)) {
			*value = v;
			*vlen = vl;
			return 0;
		}
	}
	return -ENODATA;
}
