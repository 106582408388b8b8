#include "common/compat.h"

#include "agent/spool.h"

#include <errno.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/failpoint.h"

/* Record layout in the file (host byte order: the file never outlives the
 * process): uint32 key length, uint32 encoded record length (0: no record),
 * the key bytes, the record as codec_obj_encode wrote it. */
#define SPOOL_KEY_MAX (1u << 20)
#define SPOOL_REC_MAX (1u << 16)

struct spool {
	FILE *f;
	uint64_t count;
	struct buf key, rec;
};

struct spool *spool_new(const char *dir, struct dth_err *err)
{
	struct buf path = BUF_INIT;
	buf_addf(&path, "%s/.deletes.XXXXXX", dir && *dir ? dir : ".");
	int fd = mkstemp(path.data);
	if (fd < 0) {
		int e = errno;
		err_set(err, -e, "cannot make the delete spool in %s: %s", dir, strerror(e));
		buf_release(&path);
		return NULL;
	}
	(void)unlink(path.data);
	buf_release(&path);
	FILE *f = fdopen(fd, "w+b");
	if (!f) {
		int e = errno;
		close(fd);
		err_set(err, -e, "cannot open the delete spool: %s", strerror(e));
		return NULL;
	}
	struct spool *s = xcalloc(1, sizeof(*s));
	s->f = f;
	buf_init(&s->key);
	buf_init(&s->rec);
	return s;
}

void spool_free(struct spool *s)
{
	if (!s)
		return;
	fclose(s->f);
	buf_release(&s->key);
	buf_release(&s->rec);
	free(s);
}

static int io_error(struct dth_err *err, const char *what)
{
	int e = errno ? errno : EIO;
	return err_set(err, -e, "delete spool: %s: %s", what, strerror(e));
}

int spool_add(struct spool *s, const char *key, size_t key_len, const struct obj_record *rec,
	      struct dth_err *err)
{
	if (key_len > SPOOL_KEY_MAX)
		return err_set(err, -ENAMETOOLONG, "delete spool: a key of %zu bytes", key_len);
	buf_reset(&s->rec);
	if (rec)
		codec_obj_encode(rec, &s->rec);
	uint32_t hdr[2] = {(uint32_t)key_len, (uint32_t)s->rec.len};
	errno = 0;
	if (fwrite(hdr, sizeof(hdr), 1, s->f) != 1 ||
	    (key_len && fwrite(key, key_len, 1, s->f) != 1) ||
	    (s->rec.len && fwrite(s->rec.data, s->rec.len, 1, s->f) != 1))
		return io_error(err, "write");
	s->count++;
	failpoint_hit(FAILPOINT_DELETE_SPOOLED);
	return 0;
}

uint64_t spool_count(const struct spool *s)
{
	return s->count;
}

int spool_rewind(struct spool *s, struct dth_err *err)
{
	errno = 0;
	if (fflush(s->f) != 0 || fseeko(s->f, 0, SEEK_SET) != 0)
		return io_error(err, "rewind");
	return 0;
}

/* Read exactly n bytes into b (replacing its content). */
static int read_into(struct spool *s, struct buf *b, size_t n, struct dth_err *err)
{
	buf_reset(b);
	buf_grow(b, n + 1);
	errno = 0;
	if (n && fread(b->data, n, 1, s->f) != 1)
		return ferror(s->f) ? io_error(err, "read")
				    : err_set(err, -EIO, "delete spool: a record is cut short");
	b->len = n; /* the bytes were read straight into the buffer's room */
	b->data[n] = '\0';
	return 0;
}

int spool_next(struct spool *s, const char **key, size_t *key_len, bool *has_rec,
	       struct obj_record *rec, struct dth_err *err)
{
	uint32_t hdr[2];
	errno = 0;
	size_t got = fread(hdr, 1, sizeof(hdr), s->f);
	if (got == 0 && feof(s->f))
		return 0;
	if (got != sizeof(hdr))
		return ferror(s->f) ? io_error(err, "read")
				    : err_set(err, -EIO, "delete spool: a record is cut short");
	if (hdr[0] > SPOOL_KEY_MAX || hdr[1] > SPOOL_REC_MAX)
		return err_set(err, -EIO, "delete spool: a damaged record");
	int rc = read_into(s, &s->key, hdr[0], err);
	if (!rc)
		rc = read_into(s, &s->rec, hdr[1], err);
	if (rc)
		return rc;
	*has_rec = hdr[1] > 0;
	memset(rec, 0, sizeof(*rec));
	if (*has_rec && codec_obj_decode(s->rec.data, s->rec.len, rec) != 0)
		return err_set(err, -EIO, "delete spool: a damaged record");
	*key = s->key.data ? s->key.data : "";
	*key_len = hdr[0];
	return 1;
}
