/* The FUSE view's low-level operations. Each handler takes what it needs from
 * the inode table by copy, asks the directory cache, the source or the read
 * cache, and replies; no lock is held across a request to a remote. */
#include "common/compat.h"

#define FUSE_USE_VERSION 314
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/dir.h"
#include "fs/inode.h"
#include "fs/xattr.h"
#include "manifest/codec.h"
#include "manifest/manifest.h"

#define LOOKUP_SCAN_MAX 50 /* listing entries a lookup reads before asking for "name/" alone */

struct fs {
	struct fs_options o;
	struct fs_source src;
	struct dir_source dsrc;
	struct inode_table *inodes;
	struct dir_cache *dirs;
	struct ra_cache *ra;
	double ttl_s;
	int64_t started;    /* mtime of directories that have none of their own */
	pthread_mutex_t mu; /* guards the counters below */
	uint64_t lookups_remote;
	char *bdi_path; /* owned; NULL once written */
	unsigned bdi_kb;
};

/* An open directory: the listing snapshot it reads. */
struct dir_handle {
	struct dir_listing *l;
	uint64_t parent; /* for ".." */
};

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Errors to the kernel: a positive errno that it knows how to show. */
static int to_errno(int rc)
{
	switch (rc) {
	case -ENOENT:
	case -EACCES:
	case -ENOMEM:
	case -EROFS:
	case -ENODATA:
	case -ERANGE:
	case -ENOTDIR:
	case -EISDIR:
		return -rc;
	default:
		return EIO; /* retries exhausted, timeouts, a changed object, protocol errors */
	}
}

static void fill_stat(const struct fs *fs, uint64_t ino, bool is_dir, uint64_t size, int64_t mtime,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = is_dir ? (S_IFDIR | fs->o.dir_mode) : (S_IFREG | fs->o.file_mode);
	st->st_nlink = is_dir ? 2 : 1;
	st->st_uid = fs->o.uid;
	st->st_gid = fs->o.gid;
	st->st_size = is_dir ? 4096 : (off_t)size;
	st->st_blksize = 1 << 20;
	st->st_blocks = is_dir ? 8 : (blkcnt_t)((size + 511) / 512);
	if (is_dir && mtime == 0)
		mtime = fs->started;
	st->st_mtim.tv_sec = mtime;
	st->st_atim.tv_sec = mtime;
	st->st_ctim.tv_sec = mtime;
}

struct fs *fs_new(const struct fs_options *opts)
{
	struct fs *fs = xcalloc(1, sizeof(*fs));
	fs->o = *opts;
	fs->ttl_s = (double)opts->dir_ttl_ms / 1000.0;
	fs->started = (int64_t)time(NULL);
	pthread_mutex_init(&fs->mu, NULL);
	fs->inodes = inode_table_new((int64_t)time(NULL));
	return fs;
}

static int fetch_range(void *ctx, const char *key, const char *etag, uint64_t off, uint64_t len,
		       struct buf *out)
{
	struct fs *fs = ctx;
	struct dth_err err;
	err_clear(&err);
	int rc = s3_get_object(fs->src.s3, fs->src.bucket, key, off, len,
			       etag && *etag ? etag : NULL, out, NULL, &err);
	if (rc == -ESTALE)
		log_warn("'%s' changed while open (etag no longer %s): reads fail with EIO", key,
			 etag);
	else if (rc)
		log_warn("reading '%s' [%llu, +%llu): %s", key, (unsigned long long)off,
			 (unsigned long long)len, err.message);
	return rc;
}

void fs_set_kernel_readahead(struct fs *fs, const char *path, unsigned kb)
{
	pthread_mutex_lock(&fs->mu);
	free(fs->bdi_path);
	fs->bdi_path = xstrdup(path);
	fs->bdi_kb = kb;
	pthread_mutex_unlock(&fs->mu);
}

int fs_start(struct fs *fs, const struct fs_source *src)
{
	fs->src = *src;
	if (!fs->src.prefix)
		fs->src.prefix = "";
	if (!fs->src.mf_prefix)
		fs->src.mf_prefix = "";
	memset(&fs->dsrc, 0, sizeof(fs->dsrc));
	fs->dsrc.s3 = src->s3;
	fs->dsrc.bucket = src->bucket;
	fs->dsrc.prefix = fs->src.prefix;
	fs->dsrc.m = src->m;
	fs->dsrc.task = src->task;
	fs->dsrc.mf_prefix = fs->src.mf_prefix;
	fs->dirs = dir_cache_new(&fs->dsrc, fs->o.dir_ttl_ms, fs->o.dir_cache_entries);
	struct ra_config rc = {
	    .memory = fs->o.cache_memory,
	    .max_window = fs->o.readahead,
	    .threads = fs->o.read_threads,
	    .fetch = fetch_range,
	    .ctx = fs,
	};
	fs->ra = ra_cache_new(&rc);
	if (!fs->ra)
		return errno ? -errno : -ENOMEM;
	return 0;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	ra_cache_free(fs->ra);
	dir_cache_free(fs->dirs);
	inode_table_free(fs->inodes);
	pthread_mutex_destroy(&fs->mu);
	free(fs->bdi_path);
	free(fs);
}

void fs_get_stats(struct fs *fs, struct fs_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (fs->dirs)
		out->listings = dir_cache_listings(fs->dirs);
	if (fs->ra)
		ra_cache_stats(fs->ra, &out->ra);
	out->inodes = inode_table_count(fs->inodes);
	pthread_mutex_lock(&fs->mu);
	out->lookups_remote = fs->lookups_remote;
	pthread_mutex_unlock(&fs->mu);
}

/* ---- lookups ---- */

struct found {
	bool exists;
	bool is_dir;
	uint64_t size;
	int64_t mtime;
	char etag[S3_ETAG_MAX];
};

static void found_entry(struct found *f, const struct dir_entry *e)
{
	f->exists = true;
	f->is_dir = e->is_dir;
	f->size = e->size;
	f->mtime = e->mtime;
	str_copy_fit(f->etag, e->etag, sizeof(f->etag));
}

/* One manifest object record, or a directory (any record under "key/"). */
static int lookup_manifest(struct fs *fs, const char *key, size_t klen, struct found *f,
			   struct dth_err *err)
{
	struct buf k = BUF_INIT;
	buf_adds(&k, fs->src.mf_prefix);
	size_t base = k.len;
	buf_add(&k, key, klen);
	buf_addch(&k, '/');
	int rc = 0;
	struct manifest_cursor *c =
	    manifest_cursor_new(fs->src.m, MANIFEST_OBJECTS, fs->src.task, k.data, NULL, err);
	if (!c) {
		rc = err->code ? err->code : -EIO;
		goto out;
	}
	const char *ck;
	size_t cklen;
	struct obj_record rec;
	while ((rc = manifest_cursor_next(c, &ck, &cklen, &rec)) == 1) {
		if (rec.status != OBJ_DELETED) {
			f->exists = f->is_dir = true;
			break;
		}
	}
	manifest_cursor_free(c);
	if (rc < 0 || f->exists)
		goto out;
	buf_setlen(&k, base + klen);
	rc = manifest_obj_get(fs->src.m, fs->src.task, k.data, k.len, &rec);
	if (rc == 0 && rec.status != OBJ_DELETED) {
		f->exists = true;
		f->size = rec.size;
		f->mtime = rec.last_modified;
		str_copy_fit(f->etag, rec.etag, sizeof(f->etag));
	} else if (rc == -ENOENT) {
		rc = 0;
	}
out:
	buf_release(&k);
	return rc < 0 ? rc : 0;
}

/* One LIST with prefix = key and delimiter '/': the object "key" comes first
 * if it exists, then "key/" as a common prefix after the few names that sort
 * between them ("key-1", "key.txt"). When those are many, a second LIST asks
 * for "key/" alone. A directory wins over a file of the same name. */
static int lookup_s3(struct fs *fs, const char *key, size_t klen, struct found *f,
		     struct dth_err *err)
{
	struct buf full = BUF_INIT;
	buf_adds(&full, fs->src.prefix);
	buf_add(&full, key, klen);
	size_t flen = full.len;
	struct s3_list_opts o = {
	    .prefix = full.data, .delimiter = "/", .max_keys = LOOKUP_SCAN_MAX};
	struct s3_lister *ls = s3_lister_new(fs->src.s3, fs->src.bucket, &o);
	const struct s3_list_entry *e;
	int rc, seen = 0;
	bool dir_known = false; /* whether "key/" is settled either way */
	while ((rc = s3_lister_next(ls, &e, err)) == 1) {
		if (e->key_len == flen && !e->is_prefix) {
			f->exists = true;
			f->size = e->size;
			f->mtime = e->last_modified;
			str_copy_fit(f->etag, e->etag, sizeof(f->etag));
		} else if (e->key_len == flen + 1 && e->key[flen] == '/') {
			f->exists = f->is_dir = true;
			dir_known = true;
			break;
		} else if (e->key_len > flen && (unsigned char)e->key[flen] > '/') {
			dir_known = true; /* past where "key/" would be */
			break;
		}
		if (++seen >= LOOKUP_SCAN_MAX)
			break;
	}
	s3_lister_free(ls);
	if (rc == 0)
		dir_known = true;
	if (rc >= 0 && !dir_known) {
		buf_addch(&full, '/');
		struct s3_list_opts o2 = {.prefix = full.data, .max_keys = 1};
		ls = s3_lister_new(fs->src.s3, fs->src.bucket, &o2);
		rc = s3_lister_next(ls, &e, err);
		if (rc == 1)
			f->exists = f->is_dir = true;
		s3_lister_free(ls);
	}
	if (f->is_dir) {
		f->size = 0;
		f->etag[0] = '\0';
	}
	buf_release(&full);
	pthread_mutex_lock(&fs->mu);
	fs->lookups_remote++;
	pthread_mutex_unlock(&fs->mu);
	return rc < 0 ? rc : 0;
}

static bool name_usable(const char *name, size_t len)
{
	return len > 0 && len <= 255 && strcmp(name, ".") && strcmp(name, "..");
}

static void reply_entry(fuse_req_t req, struct fs *fs, uint64_t parent, const char *name,
			size_t len, const struct found *f)
{
	struct fuse_entry_param ep;
	memset(&ep, 0, sizeof(ep));
	ep.attr_timeout = fs->ttl_s;
	ep.entry_timeout = fs->ttl_s;
	if (!f->exists) {
		/* ino 0: a negative entry the kernel may cache for entry_timeout */
		fuse_reply_entry(req, &ep);
		return;
	}
	struct inode_attr a = {
	    .is_dir = f->is_dir, .size = f->size, .mtime = f->mtime, .etag = f->etag};
	uint64_t ino =
	    inode_table_link(fs->inodes, parent, name, len, &a, now_mono_ms() + fs->o.dir_ttl_ms);
	if (!ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ep.ino = ino;
	fill_stat(fs, ino, f->is_dir, f->size, f->mtime, &ep.attr);
	if (fuse_reply_entry(req, &ep) != 0)
		inode_table_forget(fs->inodes, ino, 1); /* the kernel never saw it */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	size_t len = strlen(name);
	struct found f;
	memset(&f, 0, sizeof(f));
	if (!name_usable(name, len)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct inode_info pi;
	inode_info_init(&pi);
	if (inode_table_get(fs->inodes, parent, &pi) || !pi.is_dir) {
		inode_info_release(&pi);
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct dth_err err;
	err_clear(&err);
	int rc = 0;
	struct dir_listing *l = dir_cache_peek(fs->dirs, pi.key.data);
	if (l) {
		const struct dir_entry *e = dir_listing_find(l, name, len);
		if (e)
			found_entry(&f, e);
		dir_listing_unref(l);
	} else {
		struct buf key = BUF_INIT;
		buf_add(&key, pi.key.data, pi.key.len);
		buf_add(&key, name, len);
		rc = fs->src.m ? lookup_manifest(fs, key.data, key.len, &f, &err)
			       : lookup_s3(fs, key.data, key.len, &f, &err);
		if (rc)
			log_warn("looking up '%s': %s", key.data, err.message);
		buf_release(&key);
	}
	if (rc)
		fuse_reply_err(req, to_errno(rc));
	else
		reply_entry(req, fs, parent, name, len, &f);
	inode_info_release(&pi);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_table_forget(req_fs(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = req_fs(req);
	for (size_t i = 0; i < count; i++)
		inode_table_forget(fs->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs *fs = req_fs(req);
	struct inode_info i;
	inode_info_init(&i);
	if (inode_table_get(fs->inodes, ino, &i)) {
		fuse_reply_err(req, ENOENT);
	} else {
		struct stat st;
		fill_stat(fs, ino, i.is_dir, i.size, i.mtime, &st);
		fuse_reply_attr(req, &st, fs->ttl_s);
	}
	inode_info_release(&i);
}

/* ---- directories ---- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct inode_info i;
	inode_info_init(&i);
	if (inode_table_get(fs->inodes, ino, &i)) {
		fuse_reply_err(req, ENOENT);
		goto out;
	}
	if (!i.is_dir) {
		fuse_reply_err(req, ENOTDIR);
		goto out;
	}
	struct dth_err err;
	err_clear(&err);
	struct dir_listing *l;
	int rc = dir_cache_get(fs->dirs, i.key.data, &l, &err);
	if (rc) {
		log_warn("listing '%s': %s", i.key.len ? i.key.data : "/", err.message);
		fuse_reply_err(req, to_errno(rc));
		goto out;
	}
	struct dir_handle *h = xcalloc(1, sizeof(*h));
	h->l = l;
	h->parent = ino == INODE_ROOT ? INODE_ROOT : i.parent;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0) {
		dir_listing_unref(l);
		free(h);
	}
out:
	inode_info_release(&i);
}

/* Offsets: 1 is after ".", 2 after "..", 2+i+1 after entry i. */
static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = req_fs(req);
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	char *out = xmalloc(size);
	size_t used = 0;
	uint64_t fresh = now_mono_ms() + fs->o.dir_ttl_ms;
	size_t n = dir_listing_count(h->l);
	struct fuse_entry_param ep;
	char name[256];
	for (off_t pos = off; (size_t)pos < n + 2; pos++) {
		memset(&ep, 0, sizeof(ep));
		ep.attr_timeout = fs->ttl_s;
		ep.entry_timeout = fs->ttl_s;
		const struct dir_entry *e = NULL;
		if (pos < 2) {
			str_copy_fit(name, pos == 0 ? "." : "..", sizeof(name));
			ep.ino = pos == 0 ? ino : h->parent;
			fill_stat(fs, ep.ino, true, 0, 0, &ep.attr);
		} else {
			e = dir_listing_at(h->l, (size_t)pos - 2);
			memcpy(name, e->name, e->name_len);
			name[e->name_len] = '\0';
			fill_stat(fs, 0, e->is_dir, e->size, e->mtime, &ep.attr);
		}
		size_t need = plus ? fuse_add_direntry_plus(req, NULL, 0, name, &ep, 0)
				   : fuse_add_direntry(req, NULL, 0, name, &ep.attr, 0);
		if (used + need > size)
			break;
		if (e) {
			if (plus) {
				struct inode_attr a = {.is_dir = e->is_dir,
						       .size = e->size,
						       .mtime = e->mtime,
						       .etag = e->etag};
				ep.ino = inode_table_link(fs->inodes, ino, e->name, e->name_len, &a,
							  fresh);
				if (!ep.ino)
					break;
			} else {
				ep.ino =
				    UINT32_MAX; /* plain readdir: the kernel looks names up later */
			}
			ep.attr.st_ino = ep.ino;
		}
		if (plus)
			fuse_add_direntry_plus(req, out + used, size - used, name, &ep, pos + 1);
		else
			fuse_add_direntry(req, out + used, size - used, name, &ep.attr, pos + 1);
		used += need;
	}
	fuse_reply_buf(req, out, used);
	free(out);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	if (h) {
		dir_listing_unref(h->l);
		free(h);
	}
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

/* Raise the kernel's readahead for the mount, once: larger sequential read
 * requests mean fewer round trips through the FUSE device. */
static void raise_kernel_readahead(struct fs *fs)
{
	pthread_mutex_lock(&fs->mu);
	char *path = fs->bdi_path;
	fs->bdi_path = NULL;
	pthread_mutex_unlock(&fs->mu);
	if (!path)
		return;
	char val[32];
	int n = xsnprintf(val, sizeof(val), "%u\n", fs->bdi_kb);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, (size_t)n) != n)
		log_info("cannot set the kernel readahead (%s): %s", path, strerror(errno));
	else
		log_info("kernel readahead set to %u KiB", fs->bdi_kb);
	if (fd >= 0)
		close(fd);
	free(path);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	raise_kernel_readahead(fs);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	struct inode_info i;
	inode_info_init(&i);
	if (inode_table_get(fs->inodes, ino, &i)) {
		fuse_reply_err(req, ENOENT);
		goto out;
	}
	if (i.is_dir) {
		fuse_reply_err(req, EISDIR);
		goto out;
	}
	struct buf key = BUF_INIT;
	buf_adds(&key, fs->src.prefix);
	buf_add(&key, i.key.data, i.key.len);
	struct ra_file *rf = ra_file_open(fs->ra, ino, key.data, i.etag, i.size);
	buf_release(&key);
	fi->fh = (uint64_t)(uintptr_t)rf;
	fi->keep_cache = inode_table_cache_check(fs->inodes, ino, i.etag);
	if (fuse_reply_open(req, fi) != 0)
		ra_file_close(rf);
out:
	inode_info_release(&i);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct ra_file *rf = (struct ra_file *)(uintptr_t)fi->fh;
	struct ra_view v;
	int rc = ra_read(rf, (uint64_t)off, size, &v);
	if (rc) {
		/* A read of an open file can only be refused or fail: an object
		 * deleted or replaced since the open is EIO, like any other failure. */
		fuse_reply_err(req, rc == -EACCES ? EACCES : EIO);
		return;
	}
	fuse_reply_iov(req, v.iov, v.n);
	ra_view_release(&v);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ra_file_close((struct ra_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- extended attributes ---- */

/* The inode's attribute blob: the cached S3 part (one HEAD when stale), and
 * with a manifest, its record read now. */
static int xattr_blob(struct fs *fs, fuse_ino_t ino, struct buf *blob)
{
	struct inode_info i;
	inode_info_init(&i);
	int rc = inode_table_get(fs->inodes, ino, &i);
	if (rc || i.is_dir)
		goto out;
	if (!inode_table_xattr_get(fs->inodes, ino, blob)) {
		struct buf key = BUF_INIT;
		buf_adds(&key, fs->src.prefix);
		buf_add(&key, i.key.data, i.key.len);
		struct s3_object_head h;
		struct dth_err err;
		err_clear(&err);
		rc = s3_head_object(fs->src.s3, fs->src.bucket, key.data, 0, &h, &err);
		if (rc == 0) {
			xattr_build(blob, h.etag[0] ? h.etag : i.etag, &h, NULL);
			s3_object_head_release(&h);
			inode_table_xattr_set(fs->inodes, ino, blob->data, blob->len,
					      now_mono_ms() + fs->o.dir_ttl_ms);
		} else {
			log_warn("reading the metadata of '%s': %s", key.data, err.message);
		}
		buf_release(&key);
		if (rc)
			goto out;
	}
	if (fs->src.m) {
		struct buf k = BUF_INIT;
		buf_adds(&k, fs->src.mf_prefix);
		buf_add(&k, i.key.data, i.key.len);
		struct obj_record rec;
		if (manifest_obj_get(fs->src.m, fs->src.task, k.data, k.len, &rec) == 0)
			xattr_build(blob, NULL, NULL, &rec);
		buf_release(&k);
	}
out:
	inode_info_release(&i);
	return rc;
}

static void reply_sized(fuse_req_t req, const void *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = req_fs(req);
	struct buf blob = BUF_INIT;
	if (strncmp(name, "user.", 5)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	int rc = xattr_blob(fs, ino, &blob);
	const void *v;
	size_t vlen;
	if (rc)
		fuse_reply_err(req, to_errno(rc));
	else if ((rc = xattr_find(blob.data, blob.len, name, &v, &vlen)))
		fuse_reply_err(req, rc == -ENODATA ? ENODATA : EIO);
	else
		reply_sized(req, v, vlen, size);
	buf_release(&blob);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = req_fs(req);
	struct buf blob = BUF_INIT, names = BUF_INIT;
	int rc = xattr_blob(fs, ino, &blob);
	if (!rc)
		rc = xattr_names(blob.data, blob.len, &names);
	if (rc)
		fuse_reply_err(req, to_errno(rc));
	else
		reply_sized(req, names.data, names.len, size);
	buf_release(&blob);
	buf_release(&names);
}

/* ---- the rest ---- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct fs *fs = req_fs(req);
	struct statvfs s;
	memset(&s, 0, sizeof(s));
	s.f_bsize = 4096;
	s.f_frsize = 4096;
	s.f_namemax = 255;
	if (fs->src.m) {
		/* A manifest knows the task's size: df shows it, full, as read-only data. */
		s.f_blocks = (fs->src.known_bytes + 4095) / 4096;
		s.f_files = fs->src.known_files;
	} else {
		/* A bucket has no size limit to show: a large, empty-looking volume. */
		s.f_blocks = s.f_bfree = s.f_bavail = (fsblkcnt_t)1 << 38; /* 1 PiB */
		s.f_files = s.f_ffree = s.f_favail = (fsfilcnt_t)1 << 32;
	}
	fuse_reply_statfs(req, &s);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)ino;
	fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS) {
		conn->want |= FUSE_CAP_READDIRPLUS;
		conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO; /* attributes always come with names */
	}
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* Everything that would change the tree. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	fuse_reply_err(req, EROFS);
}
static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d)
{
	(void)p, (void)n, (void)m, (void)d;
	fuse_reply_err(req, EROFS);
}
static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{
	(void)p, (void)n, (void)m;
	fuse_reply_err(req, EROFS);
}
static void op_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{
	(void)p, (void)n;
	fuse_reply_err(req, EROFS);
}
static void op_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{
	(void)l, (void)p, (void)n;
	fuse_reply_err(req, EROFS);
}
static void op_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
		      unsigned int f)
{
	(void)p, (void)n, (void)np, (void)nn, (void)f;
	fuse_reply_err(req, EROFS);
}
static void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn)
{
	(void)i, (void)np, (void)nn;
	fuse_reply_err(req, EROFS);
}
static void op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m,
		      struct fuse_file_info *fi)
{
	(void)p, (void)n, (void)m, (void)fi;
	fuse_reply_err(req, EROFS);
}
static void op_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o,
		     struct fuse_file_info *fi)
{
	(void)i, (void)b, (void)s, (void)o, (void)fi;
	fuse_reply_err(req, EROFS);
}
static void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{
	(void)i, (void)n, (void)v, (void)s, (void)f;
	fuse_reply_err(req, EROFS);
}
static void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{
	(void)i, (void)n;
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .create = op_create,
};

const struct fuse_lowlevel_ops *fs_lowlevel_ops(size_t *size)
{
	*size = sizeof(ops);
	return &ops;
}
