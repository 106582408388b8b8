/* Inode table: two chained hash tables (by number, by parent+name) over one
 * set of heap nodes, under one mutex. */
#include "common/compat.h"

#include "fs/inode.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct node {
	uint64_t ino;
	uint64_t parent;
	uint64_t nlookup;
	char *name; /* owned; "" for the root */
	size_t name_len;
	char *key; /* owned; relative key ("" for the root, "a/" for a directory) */
	size_t key_len;
	bool is_dir;
	bool linked; /* reachable by (parent, name) */
	uint64_t size;
	int64_t mtime;
	char *etag;	  /* owned, NULL for none */
	char *cache_etag; /* owned: the ETag of the kernel's cached pages */
	uint64_t attr_until;
	char *xattr; /* owned blob */
	size_t xattr_len;
	uint64_t xattr_until;
	struct node *next_ino;	/* chain in by_ino */
	struct node *next_name; /* chain in by_name */
};

struct inode_table {
	pthread_mutex_t mu;
	struct node **by_ino;
	struct node **by_name;
	size_t nbuckets; /* power of two, for both tables */
	size_t count;
	uint64_t next_ino;
	struct node *root;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t name_hash(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ mix64(parent);
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 1099511628211ULL;
	}
	return mix64(h);
}

static void insert_ino(struct inode_table *t, struct node *n)
{
	size_t b = mix64(n->ino) & (t->nbuckets - 1);
	n->next_ino = t->by_ino[b];
	t->by_ino[b] = n;
}

static void insert_name(struct inode_table *t, struct node *n)
{
	size_t b = name_hash(n->parent, n->name, n->name_len) & (t->nbuckets - 1);
	n->next_name = t->by_name[b];
	t->by_name[b] = n;
	n->linked = true;
}

static void unlink_name(struct inode_table *t, struct node *n)
{
	if (!n->linked)
		return;
	size_t b = name_hash(n->parent, n->name, n->name_len) & (t->nbuckets - 1);
	for (struct node **p = &t->by_name[b]; *p; p = &(*p)->next_name) {
		if (*p == n) {
			*p = n->next_name;
			break;
		}
	}
	n->linked = false;
}

static void grow(struct inode_table *t)
{
	size_t old = t->nbuckets;
	struct node **oi = t->by_ino, **on = t->by_name;
	t->nbuckets = old * 2;
	t->by_ino = xcalloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_name = xcalloc(t->nbuckets, sizeof(*t->by_name));
	for (size_t i = 0; i < old; i++) {
		for (struct node *n = oi[i], *nx; n; n = nx) {
			nx = n->next_ino;
			insert_ino(t, n);
		}
		for (struct node *n = on[i], *nx; n; n = nx) {
			nx = n->next_name;
			insert_name(t, n);
		}
	}
	free(oi);
	free(on);
}

static struct node *find_ino(struct inode_table *t, uint64_t ino)
{
	for (struct node *n = t->by_ino[mix64(ino) & (t->nbuckets - 1)]; n; n = n->next_ino)
		if (n->ino == ino)
			return n;
	return NULL;
}

static struct node *find_name(struct inode_table *t, uint64_t parent, const char *name, size_t len)
{
	size_t b = name_hash(parent, name, len) & (t->nbuckets - 1);
	for (struct node *n = t->by_name[b]; n; n = n->next_name)
		if (n->parent == parent && n->name_len == len && !memcmp(n->name, name, len))
			return n;
	return NULL;
}

static void set_etag(char **dst, const char *etag)
{
	if (etag && !*etag)
		etag = NULL;
	if ((*dst == NULL && etag == NULL) || (*dst && etag && !strcmp(*dst, etag)))
		return;
	free(*dst);
	*dst = etag ? xstrdup(etag) : NULL;
}

static void node_free(struct node *n)
{
	free(n->name);
	free(n->key);
	free(n->etag);
	free(n->cache_etag);
	free(n->xattr);
	free(n);
}

struct inode_table *inode_table_new(int64_t root_mtime)
{
	struct inode_table *t = xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->nbuckets = 1024;
	t->by_ino = xcalloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_name = xcalloc(t->nbuckets, sizeof(*t->by_name));
	struct node *r = xcalloc(1, sizeof(*r));
	r->ino = INODE_ROOT;
	r->name = xstrdup("");
	r->key = xstrdup("");
	r->is_dir = true;
	r->mtime = root_mtime;
	r->nlookup = 1;
	r->attr_until = UINT64_MAX;
	insert_ino(t, r);
	t->root = r;
	t->count = 1;
	t->next_ino = INODE_ROOT + 1;
	return t;
}

void inode_table_free(struct inode_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct node *n = t->by_ino[i], *nx; n; n = nx) {
			nx = n->next_ino;
			node_free(n);
		}
	}
	free(t->by_ino);
	free(t->by_name);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

uint64_t inode_table_link(struct inode_table *t, uint64_t parent, const char *name, size_t name_len,
			  const struct inode_attr *a, uint64_t fresh_until_ms)
{
	uint64_t ino = 0;
	pthread_mutex_lock(&t->mu);
	struct node *p = find_ino(t, parent);
	if (!p || !p->is_dir)
		goto out;
	struct node *n = find_name(t, parent, name, name_len);
	if (n && n->is_dir != a->is_dir) {
		unlink_name(t, n); /* the old inode lives on until forgotten */
		n = NULL;
	}
	if (!n) {
		if (t->count >= t->nbuckets)
			grow(t);
		n = xcalloc(1, sizeof(*n));
		n->ino = t->next_ino++;
		n->parent = parent;
		n->name = xstrndup(name, name_len);
		n->name_len = name_len;
		n->key_len = p->key_len + name_len + (a->is_dir ? 1 : 0);
		n->key = xmalloc(n->key_len + 1);
		memcpy(n->key, p->key, p->key_len);
		memcpy(n->key + p->key_len, name, name_len);
		if (a->is_dir)
			n->key[n->key_len - 1] = '/';
		n->key[n->key_len] = '\0';
		n->is_dir = a->is_dir;
		insert_ino(t, n);
		insert_name(t, n);
		t->count++;
	}
	n->size = a->size;
	n->mtime = a->mtime;
	set_etag(&n->etag, a->etag);
	n->attr_until = fresh_until_ms;
	n->nlookup++;
	ino = n->ino;
out:
	pthread_mutex_unlock(&t->mu);
	return ino;
}

void inode_info_init(struct inode_info *i)
{
	memset(i, 0, sizeof(*i));
	buf_init(&i->key);
}

void inode_info_release(struct inode_info *i)
{
	buf_release(&i->key);
}

int inode_table_get(struct inode_table *t, uint64_t ino, struct inode_info *out)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&t->mu);
	struct node *n = find_ino(t, ino);
	if (n) {
		out->ino = n->ino;
		out->parent = n->parent;
		buf_reset(&out->key);
		buf_add(&out->key, n->key, n->key_len);
		out->is_dir = n->is_dir;
		out->size = n->size;
		out->mtime = n->mtime;
		str_copy_fit(out->etag, n->etag ? n->etag : "", sizeof(out->etag));
		out->attr_until_ms = n->attr_until;
		rc = 0;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int inode_table_set_attr(struct inode_table *t, uint64_t ino, const struct inode_attr *a,
			 uint64_t fresh_until_ms)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&t->mu);
	struct node *n = find_ino(t, ino);
	if (n) {
		n->size = a->size;
		n->mtime = a->mtime;
		set_etag(&n->etag, a->etag);
		n->attr_until = fresh_until_ms;
		rc = 0;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t count)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find_ino(t, ino);
	if (n && n != t->root) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		if (n->nlookup == 0) {
			unlink_name(t, n);
			size_t b = mix64(n->ino) & (t->nbuckets - 1);
			for (struct node **p = &t->by_ino[b]; *p; p = &(*p)->next_ino) {
				if (*p == n) {
					*p = n->next_ino;
					break;
				}
			}
			t->count--;
			node_free(n);
		}
	}
	pthread_mutex_unlock(&t->mu);
}

bool inode_table_cache_check(struct inode_table *t, uint64_t ino, const char *etag)
{
	bool keep = false;
	pthread_mutex_lock(&t->mu);
	struct node *n = find_ino(t, ino);
	if (n && etag && *etag) {
		keep = n->cache_etag && !strcmp(n->cache_etag, etag);
		if (!keep) {
			free(n->cache_etag);
			n->cache_etag = xstrdup(etag);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return keep;
}

int inode_table_xattr_get(struct inode_table *t, uint64_t ino, struct buf *out)
{
	int found = 0;
	pthread_mutex_lock(&t->mu);
	struct node *n = find_ino(t, ino);
	if (n && n->xattr && n->xattr_until > now_mono_ms()) {
		buf_add(out, n->xattr, n->xattr_len);
		found = 1;
	}
	pthread_mutex_unlock(&t->mu);
	return found;
}

void inode_table_xattr_set(struct inode_table *t, uint64_t ino, const void *blob, size_t len,
			   uint64_t fresh_until_ms)
{
	pthread_mutex_lock(&t->mu);
	struct node *n = find_ino(t, ino);
	if (n) {
		free(n->xattr);
		n->xattr = xmalloc(len ? len : 1);
		memcpy(n->xattr, blob, len);
		n->xattr_len = len;
		n->xattr_until = fresh_until_ms;
	}
	pthread_mutex_unlock(&t->mu);
}

size_t inode_table_count(struct inode_table *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->count;
	pthread_mutex_unlock(&t->mu);
	return n;
}
