#include "common/compat.h"

#include "agent/layout.h"

#include <errno.h>

#include "remote/s3.h"

void layout_release(struct layout *l)
{
	free(l->size);
	memset(l, 0, sizeof(*l));
}

void layout_uniform(struct layout *l, uint64_t size, uint64_t part_size, uint32_t n)
{
	free(l->size);
	l->n = n ? n : 1;
	l->size = xcalloc(l->n, sizeof(uint64_t));
	for (uint32_t i = 0; i < l->n; i++)
		l->size[i] = i + 1 < l->n ? part_size : size - part_size * (l->n - 1);
	l->part_size = part_size;
}

void layout_plan(uint64_t size, uint64_t part_size, uint64_t *out_part_size, uint32_t *out_count)
{
	if (part_size < LAYOUT_MIN_PART_SIZE)
		part_size = LAYOUT_MIN_PART_SIZE;
	while (size / part_size + (size % part_size != 0) > LAYOUT_MAX_PARTS)
		part_size *= 2;
	uint64_t n = size / part_size + (size % part_size != 0);
	if (n == 0)
		n = 1;
	*out_part_size = part_size;
	*out_count = (uint32_t)n;
}

void layout_own(struct layout *l, uint64_t size, uint64_t part_size)
{
	uint64_t ps;
	uint32_t n;
	layout_plan(size, part_size, &ps, &n);
	layout_uniform(l, size, ps, n);
	l->n_guess = 0;
}

static bool seen(const uint64_t *out, unsigned n, uint64_t p)
{
	for (unsigned k = 0; k < n; k++)
		if (out[k] == p)
			return true;
	return false;
}

unsigned layout_guess_part_sizes(uint64_t size, unsigned nparts, uint64_t *out, unsigned max)
{
	static const unsigned pref_mib[] = {8, 5, 16, 64, 10, 15, 32, 50, 100, 128, 256, 512};
	const uint64_t MiB = 1ULL << 20;
	unsigned n = 0;
	if (nparts < 2 || max == 0 || size < nparts)
		return 0;
	/* ceil(size / p) == nparts  <=>  size / nparts <= p < size / (nparts - 1) */
	uint64_t lo = size / nparts + (size % nparts != 0);
	uint64_t hi = (size - 1) / (nparts - 1); /* largest p with (nparts-1)*p < size */
	if (lo > hi)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(pref_mib) && n < max; i++) {
		uint64_t p = pref_mib[i] * MiB;
		if (p >= lo && p <= hi)
			out[n++] = p;
	}
	for (uint64_t p = (lo + MiB - 1) / MiB * MiB; p <= hi && n < max; p += MiB)
		if (!seen(out, n, p))
			out[n++] = p;
	/* Round decimal megabytes, then the smallest size that fits. */
	for (uint64_t p = (lo + 999999) / 1000000 * 1000000; p <= hi && n < max; p += 1000000)
		if (!seen(out, n, p))
			out[n++] = p;
	if (n == 0)
		out[n++] = lo;
	return n;
}

int layout_check(const uint64_t *sizes, uint32_t n, uint64_t size, const char **why)
{
	const char *w = NULL;
	int rc = -EBADMSG;
	uint64_t sum = 0;
	if (n == 0 || n > LAYOUT_MAX_PARTS)
		w = "a part count S3 does not allow";
	for (uint32_t i = 0; !w && i < n; i++) {
		if (sizes[i] == 0)
			w = "an empty part";
		else if (sizes[i] > LAYOUT_MAX_PART_SIZE)
			w = "a part over 5 GiB";
		else if (sizes[i] > size - sum)
			w = "parts larger than the object";
		else
			sum += sizes[i];
	}
	if (!w && sum != size)
		w = "parts that do not add up to the object";
	for (uint32_t i = 0; !w && i + 1 < n; i++)
		if (sizes[i] < LAYOUT_MIN_PART_SIZE) {
			w = "a part under 5 MiB before the last";
			rc = -EAGAIN;
		}
	if (why)
		*why = w;
	return w ? rc : 0;
}

/* The size of part number (1-based) and the part count the server gives. */
static int head_part(struct s3_client *src, const char *bucket, const char *key, unsigned number,
		     uint64_t *size, unsigned *count, struct dth_err *err)
{
	struct s3_object_head h;
	int rc = s3_head_object(src, bucket, key, number, &h, err);
	if (rc)
		return rc;
	*size = h.size;
	if (count)
		*count = h.parts_count;
	s3_object_head_release(&h);
	return 0;
}

/* A layout the caller must not repeat (rc -EAGAIN) or trust (-EBADMSG). The
 * message leaves the key to the caller's. */
static int refuse(struct layout *l, int rc, const char *why, struct dth_err *err)
{
	layout_release(l);
	if (rc == -EBADMSG)
		return err_set(err, rc,
			       "the source's answers about its parts are impossible (%s): not "
			       "copied",
			       why);
	return err_set(err, -EAGAIN, "the source's part layout has %s; it is not repeated", why);
}

/* Check l's sizes (see layout_check); 0 or refuse's answer. */
static int checked(struct layout *l, uint64_t size, struct dth_err *err)
{
	const char *why;
	int rc = layout_check(l->size, l->n, size, &why);
	return rc ? refuse(l, rc, why, err) : 0;
}

int layout_of_source(struct s3_client *src, const char *bucket, const char *key, uint64_t size,
		     unsigned nparts, struct layout *l, struct dth_err *err)
{
	memset(l, 0, sizeof(*l));
	uint64_t p1;
	unsigned count = 0;
	int rc = head_part(src, bucket, key, 1, &p1, &count, err);
	if (rc)
		return rc;
	/* A server that ignores partNumber answers with the whole object. */
	bool honoured = count > 0 || p1 != size;
	if (count && count != nparts)
		return refuse(l, -EBADMSG, "a part count other than its ETag's", err);
	if (nparts == 0 || nparts > LAYOUT_MAX_PARTS)
		return refuse(l, -EBADMSG, "a part count S3 does not allow", err);
	if (!honoured && nparts > 1) {
		l->n_guess = layout_guess_part_sizes(size, nparts, l->guess, LAYOUT_MAX_GUESSES);
		if (!l->n_guess)
			return refuse(l, -EAGAIN, "a part count its size cannot have", err);
		layout_uniform(l, size, l->guess[0], nparts);
		return checked(l, size, err);
	}
	if (p1 == 0 || p1 > size)
		return refuse(l, -EBADMSG, "a first part of an impossible size", err);
	uint64_t n = size / p1 + (size % p1 != 0);
	if (n == nparts) {
		/* Same count; check the last part too, so uneven layouts are caught. */
		uint64_t last = p1;
		if (nparts > 1 && (rc = head_part(src, bucket, key, nparts, &last, NULL, err)))
			return rc;
		if (last == size - p1 * (nparts - 1)) {
			layout_uniform(l, size, p1, nparts);
			return checked(l, size, err);
		}
	}
	/* Parts of different sizes: ask for each one. */
	l->n = nparts;
	l->size = xcalloc(nparts, sizeof(uint64_t));
	l->size[0] = p1;
	for (uint32_t i = 1; i < nparts; i++)
		if ((rc = head_part(src, bucket, key, i + 1, &l->size[i], NULL, err))) {
			layout_release(l);
			return rc;
		}
	l->part_size = 0; /* irregular */
	return checked(l, size, err);
}
