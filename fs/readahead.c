/* The read cache of the FUSE view (see readahead.h).
 *
 * Locking: one mutex, c->lock, guards everything here: the cache's queues, LRU,
 * object table, counters; every object and block's fields; every ra_file's
 * window state (several threads may read through one handle at once). The
 * fetch function is called without it. Two condition variables: c->cv wakes
 * readers (a fetch ended, memory was released, an object went stale) and
 * c->work wakes fetch threads (a fetch was queued, the cache stops).
 *
 * Ownership:
 * - A block's bytes (b->data) are written only by the fetch thread running its
 *   fetch, into a buffer of its own that it hands over under the lock when the
 *   fetch ends. A READY block's bytes never change until it is freed, and it is
 *   freed only when unpinned, so pinned bytes are read without the lock.
 * - A block is "linked" while it sits in its object's sorted array, where
 *   reads find it. A block dropped while pinned or while its fetch runs is
 *   detached (unlinked) and freed by whoever ends the last use: the last unpin,
 *   or its fetch thread when the fetch returns (the fetch thread owns an
 *   in-flight block: nothing else frees it).
 * - An object (one version, ident + etag) is referenced by each open handle and
 *   by each of its blocks, linked or detached (o->nref); it is freed at zero, so
 *   key and etag stay valid for in-flight fetches. Objects with no handle keep
 *   their blocks cached until those are evicted.
 *
 * Memory: c->st.held_bytes is the sum of b->held, which is b->len for every
 * block being fetched or ready (pinned or not) and 0 for a failed one (it
 * holds no bytes). It is raised only when a block is created or re-queued, and
 * only after checking it stays within cfg.memory, so it never exceeds it.
 *
 * Buffers: a block of exactly chunk bytes (all of a sequential stream's
 * readahead but its edges) gets a chunk buffer: a mapping of its own of
 * chunk_cap() bytes (chunk + 1 rounded up to whole huge pages, 64 KiB more
 * than the chunk by default, the only memory not counted in held_bytes),
 * aligned to and asked for huge pages (MADV_HUGEPAGE). When the block is
 * freed the buffer goes to c->pool for the next one instead of back to the
 * system. Memory written for the first time costs a page fault per page (in
 * a virtual machine more than the copy into it: the host backs the page
 * then), memory written again does not, so the fetch of a whole chunk takes,
 * in this order: a pooled buffer; once the cache holds more than a quarter
 * of its budget (RA_KEEP_ALL_DIV), the buffer of a whole-chunk block that a
 * read has gone through to its end (a sequential reader is past it, and the
 * kernel's page cache holds its bytes), the least recently used such block
 * in the LRU's first RA_RECYCLE_SCAN; only then a new mapping. A sequential
 * stream thus cycles through about a quarter of the budget (or its window,
 * if larger) instead of touching the whole budget, while smaller working
 * sets stay cached whole for other handles. Pooled buffers count against the
 * budget: held_bytes + pool_n * chunk never exceeds cfg.memory (hold() frees
 * pooled buffers to make room). Buffers from malloc's heap got huge pages
 * only now and then (a 2 MiB range that already held one small page of
 * earlier use gets none): a 1 GiB read took 12,000-15,000 page faults and
 * 0.77-0.89 s of CPU, with mappings of their own 4,200 and 0.57-0.72 s.
 *
 * Chunk size: 4 MiB - 64 KiB by default, on purpose smaller than 4 MiB, the
 * stripe size of radosgw (and of many S3 stores built the same way), so that
 * no range holds a whole stripe, however the object's parts are laid out,
 * and its buffer fills two huge pages. A GET that covers a whole, aligned
 * stripe makes radosgw read a 4 MiB piece from its OSD into a buffer that
 * glibc's malloc maps afresh for every such piece (its mmap threshold,
 * raised by each free, stays a few bytes below the next request of that
 * size), so the server takes a page fault for every 4 KiB of it. Pieces of a
 * partial stripe mostly come from its heap. Measured on a local radosgw
 * reading 1 GiB (8 MiB parts) through the mount, radosgw's own counters:
 * 8 MiB ranges (every stripe whole) 264,000 faults and 5-7 s of radosgw CPU;
 * 5 MiB ranges (2 stripes in 5 whole) 70,000-92,000 faults, 2.1-2.5 s,
 * 2.2-2.6 s wall; 4 MiB - 64 KiB 15,000-31,000 faults, 1.24-1.46 s,
 * 1.5-1.67 s wall; 3 MiB and 2 MiB ranges no better (1.25-1.58 s) for more
 * requests (342 and 512 a GiB, against 261).
 *
 * Blocks of an object never overlap; the LRU lists exactly the linked,
 * unpinned, ready or failed blocks, least recently used first. */
#include "common/compat.h"

#include "fs/readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"

#define RA_DEF_MEMORY	  ((uint64_t)256 << 20)
#define RA_DEF_MIN_WINDOW ((uint64_t)1 << 20)
#define RA_DEF_CHUNK	  (((uint64_t)4 << 20) - RA_ALIGN) /* see "Chunk size" above */
#define RA_DEF_THREADS	  8u
#define RA_HUGE_PAGE	  ((size_t)2 << 20)
#define RA_PAGE		  ((size_t)4096)
#define RA_RECYCLE_SCAN	  32 /* LRU blocks looked at for a buffer to reuse */
#define RA_KEEP_ALL_DIV	  4  /* below memory / this, no block is reused (see Buffers) */

/* Internal results, never returned by ra_read. */
#define RA_TOO_BIG 1 /* the range needs more than the whole budget at once */
#define RA_RETRY   2 /* a needed block failed once: plan the range again */

#define MIN(a, b) ((a) < (b) ? (a) : (b))

enum blk_state { BLK_FETCHING, BLK_READY, BLK_FAILED };
enum { Q_NONE, Q_DEMAND, Q_AHEAD, Q_COUNT };

struct ra_obj;

struct ra_block {
	struct ra_obj *obj;
	uint64_t off, len;
	enum blk_state state;
	int err;      /* BLK_FAILED: the fetch's error */
	int attempts; /* fetches queued for it since it was last fine */
	int pins;     /* reads waiting on it or views holding it */
	int queue;    /* Q_DEMAND / Q_AHEAD while waiting for a fetch thread */
	bool inflight;
	bool linked;
	bool in_lru;
	bool used;	  /* pinned by a read at least once */
	bool read_to_end; /* a read ended at or past its last byte */
	uint64_t held;
	struct buf data;
	struct ra_block *qprev, *qnext;
	struct ra_block *lprev, *lnext;
};

struct ra_obj {
	uint64_t ident;
	char *key, *etag;
	uint64_t gen; /* creation order: a larger gen is a newer version */
	int handles;
	size_t nref;
	bool stale;
	struct ra_block **v; /* linked blocks sorted by offset */
	size_t n, cap;
	struct ra_obj *hnext;
};

struct ra_file {
	struct ra_cache *c;
	struct ra_obj *obj;
	uint64_t size;
	uint64_t next_off;	       /* where a sequential read starts */
	uint64_t window;	       /* 0: no stream (start, or after a random read) */
	uint64_t stream_start;	       /* the stream's reads and readahead cover */
	uint64_t ra_end;	       /* [stream_start, ra_end) */
	struct ra_file *fprev, *fnext; /* the cache's open handles (lock) */
};

struct ra_blist {
	struct ra_block *head, *tail;
};

struct ra_cache {
	struct ra_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_cond_t work;
	pthread_t *tids;
	unsigned nthreads;
	bool stopping;
	struct ra_blist q[Q_COUNT];
	struct ra_block *lru_head, *lru_tail;
	struct ra_obj **ht;
	size_t ht_size, nobjs;
	uint64_t gen;
	int mem_waiters;       /* reads waiting for memory: readahead holds back */
	struct ra_file *files; /* open handles, freed by ra_cache_free if still open */
	struct ra_stats st;
	/* Buffers of whole-chunk blocks kept for the next such block (see
	 * "Buffers" above): pool_n of them, pool_n * chunk bytes. */
	char **pool;
	size_t pool_n, pool_cap;
};

struct bvec {
	struct ra_block **v;
	size_t n, cap;
};

struct piece {
	uint64_t off, len;
};

struct pvec {
	struct piece *v;
	size_t n, cap;
};

static void bvec_push(struct bvec *s, struct ra_block *b)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = b;
}

static void pvec_push(struct pvec *s, uint64_t off, uint64_t len)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n].off = off;
	s->v[s->n].len = len;
	s->n++;
}

static uint64_t align_down(uint64_t x)
{
	return x - x % RA_ALIGN;
}

static uint64_t align_up(uint64_t x)
{
	uint64_t r = x % RA_ALIGN;
	return r ? x - r + RA_ALIGN : x;
}

static uint64_t blk_end(const struct ra_block *b)
{
	return b->off + b->len;
}

static bool blk_overlaps(const struct ra_block *b, uint64_t lo, uint64_t hi)
{
	return b->off < hi && blk_end(b) > lo;
}

/* ---- fetch queues and LRU (lock held) ---- */

static void queue_add(struct ra_cache *c, struct ra_block *b, int q)
{
	struct ra_blist *l = &c->q[q];
	b->queue = q;
	b->qnext = NULL;
	b->qprev = l->tail;
	if (l->tail)
		l->tail->qnext = b;
	else
		l->head = b;
	l->tail = b;
	pthread_cond_signal(&c->work);
}

static void queue_remove(struct ra_cache *c, struct ra_block *b)
{
	struct ra_blist *l = &c->q[b->queue];
	if (b->qprev)
		b->qprev->qnext = b->qnext;
	else
		l->head = b->qnext;
	if (b->qnext)
		b->qnext->qprev = b->qprev;
	else
		l->tail = b->qprev;
	b->qprev = b->qnext = NULL;
	b->queue = Q_NONE;
}

static void lru_add(struct ra_cache *c, struct ra_block *b)
{
	b->in_lru = true;
	b->lnext = NULL;
	b->lprev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->lnext = b;
	else
		c->lru_head = b;
	c->lru_tail = b;
}

static void lru_remove(struct ra_cache *c, struct ra_block *b)
{
	if (b->lprev)
		b->lprev->lnext = b->lnext;
	else
		c->lru_head = b->lnext;
	if (b->lnext)
		b->lnext->lprev = b->lprev;
	else
		c->lru_tail = b->lprev;
	b->lprev = b->lnext = NULL;
	b->in_lru = false;
}

/* ---- objects (lock held) ---- */

static size_t ht_slot(const struct ra_cache *c, uint64_t ident)
{
	uint64_t h = ident * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 32) & (c->ht_size - 1);
}

static void ht_grow(struct ra_cache *c)
{
	size_t old_size = c->ht_size;
	struct ra_obj **old = c->ht;
	c->ht_size *= 2;
	c->ht = xcalloc(c->ht_size, sizeof(*c->ht));
	for (size_t i = 0; i < old_size; i++) {
		while (old[i]) {
			struct ra_obj *o = old[i];
			old[i] = o->hnext;
			size_t s = ht_slot(c, o->ident);
			o->hnext = c->ht[s];
			c->ht[s] = o;
		}
	}
	free(old);
}

static void obj_free(struct ra_cache *c, struct ra_obj *o)
{
	struct ra_obj **pp = &c->ht[ht_slot(c, o->ident)];
	while (*pp != o)
		pp = &(*pp)->hnext;
	*pp = o->hnext;
	c->nobjs--;
	free(o->v);
	free(o->key);
	free(o->etag);
	free(o);
}

static void obj_unref(struct ra_cache *c, struct ra_obj *o)
{
	if (--o->nref == 0)
		obj_free(c, o);
}

/* Index of the first block ending after off. */
static size_t obj_first(const struct ra_obj *o, uint64_t off)
{
	size_t lo = 0, hi = o->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (blk_end(o->v[mid]) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void obj_link(struct ra_obj *o, struct ra_block *b)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 8;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	size_t i = obj_first(o, b->off);
	memmove(o->v + i + 1, o->v + i, (o->n - i) * sizeof(*o->v));
	o->v[i] = b;
	o->n++;
	b->linked = true;
}

static void obj_unlink(struct ra_obj *o, struct ra_block *b)
{
	size_t i = obj_first(o, b->off);
	if (i >= o->n || o->v[i] != b)
		abort(); /* broken invariant: blocks never overlap */
	memmove(o->v + i, o->v + i + 1, (o->n - i - 1) * sizeof(*o->v));
	o->n--;
	b->linked = false;
}

/* ---- blocks (lock held) ---- */

static uint64_t pool_bytes(const struct ra_cache *c)
{
	return (uint64_t)c->pool_n * c->cfg.chunk;
}

/* Bytes mapped for one chunk buffer: chunk + 1 (the NUL) rounded up to
 * whole huge pages when that adds at most 1/32 (the default chunk: 64 KiB
 * more), else to whole pages. */
static size_t chunk_cap(const struct ra_cache *c)
{
	size_t want = (size_t)c->cfg.chunk + 1;
	size_t huge = want + (RA_HUGE_PAGE - want % RA_HUGE_PAGE) % RA_HUGE_PAGE;
	if (huge - c->cfg.chunk <= c->cfg.chunk / 32)
		return huge;
	return want + (RA_PAGE - want % RA_PAGE) % RA_PAGE;
}

static void chunk_unmap(const struct ra_cache *c, char *p)
{
	munmap(p, chunk_cap(c));
}

static void hold(struct ra_cache *c, struct ra_block *b)
{
	b->held = b->len;
	c->st.held_bytes += b->len;
	/* pooled buffers make room for bytes in use */
	while (c->pool_n && c->st.held_bytes + pool_bytes(c) > c->cfg.memory)
		chunk_unmap(c, c->pool[--c->pool_n]);
	if (c->st.held_bytes > c->st.peak_bytes)
		c->st.peak_bytes = c->st.held_bytes;
}

static void block_free(struct ra_cache *c, struct ra_block *b);

/* The buffer of a whole-chunk block that was read to its end and waits in
 * the LRU (near its head: least recently used), freeing the block; NULL when
 * the first RA_RECYCLE_SCAN blocks of the LRU have none. */
static char *recycle_read(struct ra_cache *c)
{
	struct ra_block *b = c->lru_head;
	for (int i = 0; b && i < RA_RECYCLE_SCAN; i++, b = b->lnext) {
		if (b->state != BLK_READY || !b->read_to_end || b->data.cap != chunk_cap(c))
			continue;
		char *mem = b->data.data;
		buf_init(&b->data);
		block_free(c, b);
		return mem;
	}
	return NULL;
}

/* A buffer for a block of len bytes when len is a whole chunk: from the
 * pool, else one of a block already read to its end, else NULL (the caller
 * allocates). */
static char *pool_take(struct ra_cache *c, uint64_t len)
{
	if (len != c->cfg.chunk)
		return NULL;
	if (c->pool_n)
		return c->pool[--c->pool_n];
	if (c->st.held_bytes + pool_bytes(c) <= c->cfg.memory / RA_KEEP_ALL_DIV)
		return NULL;
	return recycle_read(c);
}

/* A new chunk buffer: a mapping of its own, chunk_cap bytes aligned to a
 * huge page and asked for huge pages, so that the first write into it takes
 * one page fault per 2 MiB instead of one per 4 KiB. NULL when it cannot be
 * mapped (the caller allocates len + 1 bytes instead). No lock needed. */
static char *pool_alloc(const struct ra_cache *c)
{
	size_t cap = chunk_cap(c);
	char *m = mmap(NULL, cap + RA_HUGE_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	size_t head = (RA_HUGE_PAGE - (uintptr_t)m % RA_HUGE_PAGE) % RA_HUGE_PAGE;
	if (head)
		munmap(m, head);
	munmap(m + head + cap, RA_HUGE_PAGE - head);
#if defined(MADV_HUGEPAGE) && !defined(RA_NO_THP)
	if (cap >= RA_HUGE_PAGE)
		(void)madvise(m + head, cap - cap % RA_HUGE_PAGE, MADV_HUGEPAGE);
#endif
	return m + head;
}

/* The end of a block's bytes (lock held): its buffer goes to the pool when
 * it is a chunk buffer and fits in the budget, else back to the allocator. */
static void data_release(struct ra_cache *c, struct buf *data)
{
	if (data->cap != chunk_cap(c)) {
		buf_release(data);
		return;
	}
	if (c->st.held_bytes + pool_bytes(c) + c->cfg.chunk <= c->cfg.memory) {
		if (c->pool_n == c->pool_cap) {
			c->pool_cap = c->pool_cap ? c->pool_cap * 2 : 16;
			c->pool = xrealloc(c->pool, c->pool_cap * sizeof(*c->pool));
		}
		c->pool[c->pool_n++] = data->data;
	} else {
		chunk_unmap(c, data->data);
	}
	buf_init(data);
}

static void unhold(struct ra_cache *c, struct ra_block *b)
{
	c->st.held_bytes -= b->held;
	b->held = 0;
	if (c->mem_waiters)
		pthread_cond_broadcast(&c->cv);
}

/* A new block being fetched; the caller checked that its bytes fit. */
static struct ra_block *block_new(struct ra_cache *c, struct ra_obj *o, uint64_t off, uint64_t len,
				  int q)
{
	struct ra_block *b = xcalloc(1, sizeof(*b));
	b->obj = o;
	o->nref++;
	b->off = off;
	b->len = len;
	b->state = BLK_FETCHING;
	b->attempts = 1;
	buf_init(&b->data);
	hold(c, b);
	obj_link(o, b);
	queue_add(c, b, q);
	return b;
}

/* Free a block nobody uses (not pinned, not in flight). */
static void block_free(struct ra_cache *c, struct ra_block *b)
{
	struct ra_obj *o = b->obj;
	if (b->in_lru)
		lru_remove(c, b);
	if (b->queue)
		queue_remove(c, b);
	if (b->linked)
		obj_unlink(o, b);
	unhold(c, b);
	data_release(c, &b->data);
	free(b);
	obj_unref(c, o);
}

/* A queued fetch nobody needs any more: it fails without running. */
static void block_cancel(struct ra_cache *c, struct ra_block *b)
{
	queue_remove(c, b);
	unhold(c, b);
	b->state = BLK_FAILED;
	b->err = -ECANCELED;
}

static void pin(struct ra_cache *c, struct ra_block *b)
{
	if (b->in_lru)
		lru_remove(c, b);
	b->pins++;
	b->used = true;
}

static void unpin(struct ra_cache *c, struct ra_block *b)
{
	if (--b->pins)
		return;
	if (!b->linked) {
		if (!b->inflight && !b->queue)
			block_free(c, b);
		return;
	}
	if (b->state != BLK_FETCHING) {
		lru_add(c, b);
		if (c->mem_waiters)
			pthread_cond_broadcast(&c->cv);
	}
}

static void unpin_all(struct ra_cache *c, struct bvec *s)
{
	for (size_t i = 0; i < s->n; i++)
		unpin(c, s->v[i]);
	s->n = 0;
}

/* Drop every block of o: free the unused ones, cancel queued fetches, detach
 * the pinned and in-flight ones (freed when their last user is done). */
static void obj_drop_blocks(struct ra_cache *c, struct ra_obj *o)
{
	o->nref++; /* keep o while its blocks go */
	while (o->n) {
		struct ra_block *b = o->v[o->n - 1];
		obj_unlink(o, b);
		if (b->in_lru)
			lru_remove(c, b);
		if (b->queue)
			block_cancel(c, b);
		if (!b->pins && !b->inflight)
			block_free(c, b);
	}
	obj_unref(c, o);
	pthread_cond_broadcast(&c->cv);
}

static bool has_newer_version(const struct ra_cache *c, const struct ra_obj *o)
{
	for (const struct ra_obj *x = c->ht[ht_slot(c, o->ident)]; x; x = x->hnext)
		if (x != o && x->ident == o->ident && x->gen > o->gen)
			return true;
	return false;
}

/* ---- memory ---- */

/* Whether an LRU block may go to make room for a range of o: never one the
 * range itself needs; never a failed block of an open object (its failure is
 * still to be reported or retried, and it holds no bytes); for readahead, only
 * blocks already read, or of objects no handle has open, so one handle's
 * readahead does not throw away another's before it is read. */
static bool evictable(const struct ra_block *b, const struct ra_obj *o, uint64_t lo, uint64_t hi,
		      bool demand)
{
	if (b->obj == o && blk_overlaps(b, lo, hi))
		return false;
	if (b->state == BLK_FAILED)
		return b->obj->handles == 0;
	return demand || b->used || b->obj->handles == 0;
}

/* Evict least recently used blocks until want more bytes are free; evicts
 * nothing and returns false when that is not possible now. */
static bool evict(struct ra_cache *c, uint64_t want, const struct ra_obj *o, uint64_t lo,
		  uint64_t hi, bool demand)
{
	uint64_t avail = 0;
	for (struct ra_block *b = c->lru_head; b && avail < want; b = b->lnext)
		if (evictable(b, o, lo, hi, demand))
			avail += b->held;
	if (avail < want)
		return false;
	uint64_t freed = 0;
	struct ra_block *next;
	for (struct ra_block *b = c->lru_head; b && freed < want; b = next) {
		next = b->lnext;
		if (evictable(b, o, lo, hi, demand)) {
			freed += b->held;
			block_free(c, b);
		}
	}
	return true;
}

/* ---- reads (lock held) ---- */

/* The blocks [lo, hi) needs: existing ones overlapping it, and new pieces
 * (at most chunk bytes each) for its gaps, rounded out to RA_ALIGN when round.
 * Returns the bytes all of them hold once fetched; *need is what must be
 * reserved now (new pieces and failed blocks to fetch again). */
static uint64_t plan(const struct ra_cache *c, const struct ra_file *f, uint64_t lo, uint64_t hi,
		     bool round, struct pvec *pieces, uint64_t *need)
{
	const struct ra_obj *o = f->obj;
	uint64_t rlo = round ? align_down(lo) : lo;
	uint64_t rhi = round ? MIN(align_up(hi), f->size) : hi;
	uint64_t sum = 0, p = rlo;
	size_t i = obj_first(o, rlo);

	*need = 0;
	pieces->n = 0;
	while (p < rhi) {
		if (i < o->n && o->v[i]->off <= p) {
			const struct ra_block *b = o->v[i++];
			if (blk_overlaps(b, lo, hi)) {
				sum += b->len;
				if (b->state == BLK_FAILED)
					*need += b->len;
			}
			p = blk_end(b);
			continue;
		}
		uint64_t gend = i < o->n ? MIN(o->v[i]->off, rhi) : rhi;
		while (p < gend) {
			uint64_t e = MIN(gend, p + c->cfg.chunk);
			if (e > lo && p < hi) {
				pvec_push(pieces, p, e - p);
				sum += e - p;
				*need += e - p;
			}
			p = e;
		}
	}
	return sum;
}

/* Make sure blocks cover [lo, hi) and pin them into s (in offset order),
 * waiting for memory when it does not fit yet. Returns 0, -ESTALE, or
 * RA_TOO_BIG when the blocks would not fit in the whole budget (nothing is
 * pinned then). Never holds a pin while it waits, so readers waiting for
 * memory cannot wait for each other. */
static int acquire(struct ra_cache *c, struct ra_file *f, uint64_t lo, uint64_t hi, bool round,
		   struct bvec *s)
{
	struct ra_obj *o = f->obj;
	struct pvec pieces = {0};
	int r = 0;

	s->n = 0;
	for (;;) {
		uint64_t need;
		if (o->stale) {
			r = -ESTALE;
			break;
		}
		if (plan(c, f, lo, hi, round, &pieces, &need) > c->cfg.memory) {
			r = RA_TOO_BIG;
			break;
		}
		uint64_t room = c->cfg.memory - c->st.held_bytes;
		if (need > room && !evict(c, need - room, o, lo, hi, true)) {
			c->mem_waiters++;
			pthread_cond_wait(&c->cv, &c->lock);
			c->mem_waiters--;
			continue;
		}
		for (size_t i = 0; i < pieces.n; i++)
			block_new(c, o, pieces.v[i].off, pieces.v[i].len, Q_DEMAND);
		for (size_t i = obj_first(o, lo); i < o->n && o->v[i]->off < hi; i++) {
			struct ra_block *b = o->v[i];
			if (b->state == BLK_FAILED) {
				/* fetch it again, once: see wait_ready */
				if (b->in_lru)
					lru_remove(c, b);
				b->attempts = b->attempts >= 2 ? 1 : b->attempts + 1;
				b->state = BLK_FETCHING;
				b->err = 0;
				hold(c, b);
				queue_add(c, b, Q_DEMAND);
			} else if (b->queue == Q_AHEAD) {
				/* a read waits for it now */
				queue_remove(c, b);
				queue_add(c, b, Q_DEMAND);
			}
			pin(c, b);
			bvec_push(s, b);
		}
		break;
	}
	free(pieces.v);
	return r;
}

/* Wait until every pinned block of s is fetched. Returns 0 (all ready, still
 * pinned), or with every pin released: -ESTALE, RA_RETRY when a block failed
 * for the first time (the next acquire fetches it again), or the error of a
 * block that failed again (it is dropped, so a later read starts afresh). */
static int wait_ready(struct ra_cache *c, struct ra_obj *o, struct bvec *s)
{
	for (;;) {
		bool busy = false;
		if (o->stale) {
			unpin_all(c, s);
			return -ESTALE;
		}
		for (size_t i = 0; i < s->n && !busy; i++)
			busy = s->v[i]->state == BLK_FETCHING;
		if (!busy)
			break;
		pthread_cond_wait(&c->cv, &c->lock);
	}
	for (size_t i = 0; i < s->n; i++) {
		struct ra_block *b = s->v[i];
		if (b->state != BLK_FAILED)
			continue;
		if (b->attempts < 2) {
			unpin_all(c, s);
			return RA_RETRY;
		}
		int err = b->err;
		if (b->linked)
			obj_unlink(o, b);
		unpin_all(c, s);
		return err;
	}
	return 0;
}

/* Copy [lo, hi) out of the pinned blocks of s into dst, then unpin them. The
 * copy runs without the lock: pinned ready blocks do not change. */
static void copy_out(struct ra_cache *c, struct bvec *s, uint64_t lo, uint64_t hi, char *dst)
{
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct ra_block *b = s->v[i];
		uint64_t a = b->off > lo ? b->off : lo;
		uint64_t e = MIN(blk_end(b), hi);
		memcpy(dst + (a - lo), b->data.data + (a - b->off), e - a);
	}
	pthread_mutex_lock(&c->lock);
	unpin_all(c, s);
}

/* A read bigger than the budget: one block (or one budget-sized gap) at a
 * time, copied into view->copy. */
static int read_pieces(struct ra_cache *c, struct ra_file *f, uint64_t off, uint64_t end,
		       struct ra_view *view)
{
	struct ra_obj *o = f->obj;
	struct bvec s = {0};
	char *dst = xmalloc(end - off);
	uint64_t p = off;
	int r = 0;

	while (p < end) {
		size_t i = obj_first(o, p);
		uint64_t q;
		if (i < o->n && o->v[i]->off <= p) {
			q = MIN(end, blk_end(o->v[i]));
		} else {
			q = end - p > c->cfg.memory ? p + c->cfg.memory : end;
			if (i < o->n && o->v[i]->off < q)
				q = o->v[i]->off;
		}
		r = acquire(c, f, p, q, false, &s);
		if (r == RA_TOO_BIG) /* blocks came while it waited: choose again */
			continue;
		if (r)
			break;
		r = wait_ready(c, o, &s);
		if (r == RA_RETRY)
			continue;
		if (r)
			break;
		copy_out(c, &s, p, q, dst + (p - off));
		p = q;
	}
	free(s.v);
	if (r) {
		free(dst);
		return r;
	}
	view->copy = dst;
	view->iov[0].iov_base = dst;
	view->iov[0].iov_len = end - off;
	view->n = 1;
	view->bytes = end - off;
	return 0;
}

/* Classify a read of [off, end) and move the handle's window. A read at the
 * expected next offset is sequential: the window starts at min_window and
 * doubles up to max_window. Any other read resets it (the next sequential read
 * starts again at min_window) and fetches only its own range. Returns true
 * when readahead should follow the read. */
static bool window_update(const struct ra_cache *c, struct ra_file *f, uint64_t off, uint64_t end)
{
	const struct ra_config *cfg = &c->cfg;
	bool seq = off == f->next_off;
	/* Reads the kernel sent in parallel may arrive out of order: one within
	 * the stream's readahead neither grows nor resets the window. */
	bool in_stream = !seq && f->window && off >= f->stream_start && off < f->ra_end;

	if (seq) {
		if (!f->window)
			f->window = cfg->min_window;
		else
			f->window =
			    f->window > cfg->max_window / 2 ? cfg->max_window : f->window * 2;
	} else if (!in_stream) {
		f->window = 0;
		f->stream_start = off;
		f->ra_end = 0;
		f->next_off = end;
		return false;
	}
	if (end > f->next_off)
		f->next_off = end;
	return f->window > 0;
}

/* Queue readahead after a read ending at end, up to end + window, when less
 * than half the window is already fetched or in flight; only what fits in
 * memory (evicting only blocks already read) and only while no read waits
 * for memory. */
static void readahead_issue(struct ra_cache *c, struct ra_file *f, uint64_t off, uint64_t end)
{
	struct ra_obj *o = f->obj;
	uint64_t w = f->window;
	uint64_t chunk = c->cfg.chunk;
	uint64_t target = end + w;
	uint64_t lo = align_down(off);

	/* Once the window holds whole chunks, readahead ends on the chunk grid
	 * and fetches whole chunks, not a sliver per read. */
	if (target < end || target >= f->size)
		target = f->size;
	else if (w >= chunk)
		target -= target % chunk;
	else
		target = MIN(align_up(target), f->size);
	if (target > f->ra_end)
		f->ra_end = target;
	uint64_t p = end;
	size_t i = obj_first(o, p);
	while (p < target && i < o->n && o->v[i]->off <= p)
		p = blk_end(o->v[i++]);
	if (p >= target || p - end >= w / 2)
		return;
	while (p < target) {
		if (i < o->n && o->v[i]->off <= p) {
			p = blk_end(o->v[i++]);
			continue;
		}
		uint64_t gend = i < o->n ? MIN(o->v[i]->off, target) : target;
		uint64_t e = MIN(gend, p - p % chunk + chunk);
		uint64_t room = c->cfg.memory - c->st.held_bytes;
		if (c->mem_waiters)
			return;
		if (e - p > room && !evict(c, e - p - room, o, lo, target, false))
			return;
		block_new(c, o, p, e - p, Q_AHEAD);
		p = e;
		i = obj_first(o, p); /* the array changed */
	}
}

int ra_read(struct ra_file *f, uint64_t off, size_t len, struct ra_view *view)
{
	struct ra_cache *c = f->c;
	struct ra_obj *o = f->obj;
	struct bvec s = {0};
	int r = 0;

	memset(view, 0, sizeof(*view));
	view->cache = c;
	pthread_mutex_lock(&c->lock);
	if (o->stale) {
		r = -ESTALE;
		goto out;
	}
	if (off >= f->size || len == 0)
		goto out;
	uint64_t end = off + MIN((uint64_t)len, f->size - off);
	bool ahead = window_update(c, f, off, end);

	for (bool issued = false;;) {
		r = acquire(c, f, off, end, true, &s);
		if (r)
			break;
		if (ahead && !issued) {
			readahead_issue(c, f, off, end);
			issued = true;
		}
		r = wait_ready(c, o, &s);
		if (r != RA_RETRY)
			break;
	}
	if (r == RA_TOO_BIG) {
		r = read_pieces(c, f, off, end, view);
		goto out;
	}
	if (r)
		goto out;
	for (size_t i = 0; i < s.n; i++)
		if (end >= blk_end(s.v[i]))
			s.v[i]->read_to_end = true;
	if (s.n > RA_VIEW_MAX) {
		char *dst = xmalloc(end - off);
		copy_out(c, &s, off, end, dst);
		view->copy = dst;
		view->iov[0].iov_base = dst;
		view->iov[0].iov_len = end - off;
		view->n = 1;
		view->bytes = end - off;
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		struct ra_block *b = s.v[i];
		uint64_t a = b->off > off ? b->off : off;
		uint64_t e = MIN(blk_end(b), end);
		view->iov[i].iov_base = b->data.data + (a - b->off);
		view->iov[i].iov_len = e - a;
		view->pins[i] = b;
		view->bytes += e - a;
	}
	view->n = (int)s.n;
	view->n_pins = (int)s.n;
out:
	pthread_mutex_unlock(&c->lock);
	free(s.v);
	return r;
}

void ra_view_release(struct ra_view *view)
{
	struct ra_cache *c = view->cache;
	if (view->n_pins) {
		pthread_mutex_lock(&c->lock);
		for (int i = 0; i < view->n_pins; i++)
			unpin(c, view->pins[i]);
		pthread_mutex_unlock(&c->lock);
	}
	free(view->copy);
	memset(view, 0, sizeof(*view));
}

/* ---- fetch threads ---- */

/* The fetch of b ended with r (lock held); data is its bytes on success. */
static void fetch_done(struct ra_cache *c, struct ra_block *b, int r, struct buf *data)
{
	struct ra_obj *o = b->obj;
	b->inflight = false;
	if (r == 0) {
		c->st.fetched_bytes += b->len;
		b->data = *data;
		b->state = BLK_READY;
	} else {
		unhold(c, b);
		data_release(c, data);
		b->state = BLK_FAILED;
		b->err = r;
		log_debug("read cache: fetch of %s at %llu (%llu bytes) failed: %s", o->key,
			  (unsigned long long)b->off, (unsigned long long)b->len, strerror(-r));
	}
	o->nref++; /* keep o until the end, whatever is freed below */
	if (r == -ESTALE && !o->stale) {
		log_info("object %s changed while open", o->key);
		o->stale = true;
		if (b->linked)
			obj_unlink(o, b);
		obj_drop_blocks(c, o);
	}
	if (!b->linked) {
		if (!b->pins)
			block_free(c, b);
	} else if (!b->pins) {
		lru_add(c, b);
	}
	obj_unref(c, o);
	pthread_cond_broadcast(&c->cv);
}

static void *fetch_main(void *arg)
{
	struct ra_cache *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->stopping && !c->q[Q_DEMAND].head && !c->q[Q_AHEAD].head)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->stopping)
			break;
		struct ra_block *b = c->q[Q_DEMAND].head ? c->q[Q_DEMAND].head : c->q[Q_AHEAD].head;
		queue_remove(c, b);
		b->inflight = true;
		c->st.fetches++;
		const char *key = b->obj->key, *etag = b->obj->etag;
		uint64_t off = b->off, len = b->len;
		char *mem = pool_take(c, len);
		pthread_mutex_unlock(&c->lock);

		/* Room for len bytes and the NUL (a chunk buffer: up to its mapping's
		 * rounding more). The fetch never appends more than the len bytes it
		 * asked for (a GET refuses a longer answer), so it never reallocates,
		 * which a mapping could not survive. */
		size_t cap = len + 1;
		if (len == c->cfg.chunk && (mem || (mem = pool_alloc(c))))
			cap = chunk_cap(c);
		if (!mem)
			mem = xmalloc(cap);
		struct buf data;
		data.data = mem;
		data.data[0] = '\0';
		data.len = 0;
		data.cap = cap;
		int r = c->cfg.fetch(c->cfg.ctx, key, etag, off, len, &data);
		if (r > 0)
			r = -EIO;
		if (r == 0 && data.len != len) {
			log_warn("read cache: fetch of %s at %llu returned %zu bytes, not %llu",
				 key, (unsigned long long)off, data.len, (unsigned long long)len);
			r = -EIO;
		}

		pthread_mutex_lock(&c->lock);
		fetch_done(c, b, r, &data);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- handles ---- */

struct ra_file *ra_file_open(struct ra_cache *c, uint64_t ident, const char *key, const char *etag,
			     uint64_t size)
{
	struct ra_file *f = xcalloc(1, sizeof(*f));
	struct ra_obj *o;

	pthread_mutex_lock(&c->lock);
	for (o = c->ht[ht_slot(c, ident)]; o; o = o->hnext)
		if (o->ident == ident && !o->stale && strcmp(o->etag, etag ? etag : "") == 0)
			break;
	if (!o) {
		if (c->nobjs >= c->ht_size * 2)
			ht_grow(c);
		o = xcalloc(1, sizeof(*o));
		o->ident = ident;
		o->key = xstrdup(key ? key : "");
		o->etag = xstrdup(etag ? etag : "");
		o->gen = ++c->gen;
		size_t s = ht_slot(c, ident);
		o->hnext = c->ht[s];
		c->ht[s] = o;
		c->nobjs++;
	}
	o->handles++;
	o->nref++;
	/* older versions nobody has open are of no more use */
	struct ra_obj *next;
	for (struct ra_obj *x = c->ht[ht_slot(c, ident)]; x; x = next) {
		next = x->hnext;
		if (x != o && x->ident == ident && x->gen < o->gen && !x->handles)
			obj_drop_blocks(c, x); /* may free x, not next */
	}
	f->c = c;
	f->obj = o;
	f->size = size;
	f->fnext = c->files;
	if (c->files)
		c->files->fprev = f;
	c->files = f;
	pthread_mutex_unlock(&c->lock);
	return f;
}

void ra_file_close(struct ra_file *f)
{
	if (!f)
		return;
	struct ra_cache *c = f->c;
	struct ra_obj *o = f->obj;

	pthread_mutex_lock(&c->lock);
	if (--o->handles == 0) {
		/* Readahead nobody will read: cancel what has not started (fetches
		 * in flight finish and stay cached). */
		for (size_t i = o->n; i-- > 0;) {
			struct ra_block *b = o->v[i];
			if (b->queue && !b->pins) {
				block_cancel(c, b);
				block_free(c, b);
			}
		}
		if (o->stale || has_newer_version(c, o))
			obj_drop_blocks(c, o);
	}
	obj_unref(c, o);
	if (f->fprev)
		f->fprev->fnext = f->fnext;
	else
		c->files = f->fnext;
	if (f->fnext)
		f->fnext->fprev = f->fprev;
	pthread_mutex_unlock(&c->lock);
	free(f);
}

/* ---- the cache ---- */

void ra_cache_stats(struct ra_cache *c, struct ra_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}

static void cache_stop(struct ra_cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nthreads; i++)
		pthread_join(c->tids[i], NULL);
	c->nthreads = 0;
}

struct ra_cache *ra_cache_new(const struct ra_config *cfg)
{
	if (!cfg || !cfg->fetch) {
		errno = EINVAL;
		return NULL;
	}
	struct ra_cache *c = xcalloc(1, sizeof(*c));
	struct ra_config *k = &c->cfg;

	*k = *cfg;
	if (!k->memory)
		k->memory = RA_DEF_MEMORY;
	if (!k->min_window)
		k->min_window = RA_DEF_MIN_WINDOW;
	if (k->min_window > k->max_window)
		k->min_window = k->max_window;
	if (!k->chunk)
		k->chunk = RA_DEF_CHUNK;
	k->chunk = align_up(k->chunk);
	/* several fetches must fit in the budget at once */
	if (k->chunk > k->memory / 4)
		k->chunk = align_down(k->memory / 4) ? align_down(k->memory / 4) : RA_ALIGN;
	if (k->chunk > k->memory)
		k->chunk = k->memory;
	if (!k->threads)
		k->threads = RA_DEF_THREADS;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->work, NULL);
	c->ht_size = 64;
	c->ht = xcalloc(c->ht_size, sizeof(*c->ht));
	c->tids = xcalloc(k->threads, sizeof(*c->tids));
	for (unsigned i = 0; i < k->threads; i++) {
		int r = pthread_create(&c->tids[i], NULL, fetch_main, c);
		if (r) {
			log_error("read cache: cannot start fetch threads: %s", strerror(r));
			ra_cache_free(c);
			errno = r;
			return NULL;
		}
		c->nthreads++;
	}
	return c;
}

void ra_cache_free(struct ra_cache *c)
{
	if (!c)
		return;
	cache_stop(c);
	/* A FUSE session can end (unmount) without a RELEASE for every open
	 * file: those handles go with the cache. */
	while (c->files) {
		struct ra_file *f = c->files;
		c->files = f->fnext;
		free(f);
	}
	/* No thread runs now; every block left is linked to its object (views
	 * must be gone). */
	for (size_t i = 0; i < c->ht_size; i++) {
		while (c->ht[i]) {
			struct ra_obj *o = c->ht[i];
			c->ht[i] = o->hnext;
			for (size_t j = 0; j < o->n; j++) {
				data_release(c, &o->v[j]->data);
				free(o->v[j]);
			}
			free(o->v);
			free(o->key);
			free(o->etag);
			free(o);
		}
	}
	while (c->pool_n)
		chunk_unmap(c, c->pool[--c->pool_n]);
	free(c->pool);
	free(c->ht);
	free(c->tids);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
