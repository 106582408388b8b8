/* A bounded sample of a listing's keys, taken as the keys go by, for cutting
 * the key space into ranges without walking it again: the parallel ranges of
 * a rescan (sync.c) and the cuts of a shard plan (shard.h).
 *
 * It keeps two grids of (position, key) pairs, positions counted from 0 in
 * listing order (every entry of the listing pages, filtered or not):
 *  - the page grid: the last key of the source's listing pages (as the
 *    server cut them: radosgw's pages are not always 1000 keys), of every
 *    page, then every 2nd, 4th, ... page as it fills up: a cut there starts
 *    the next range where the source itself starts a page, so ranged
 *    listings of an unchanged source add up to exactly the pages of one
 *    full listing;
 *  - the fine grid: every key, then every 2nd, 4th, ... (for small listings,
 *    shorter than a page per range).
 * Each grid holds at most KEYSAMPLE_CAP pairs, so memory is bounded by
 * KEYSAMPLE_CAP * 2 * the longest key, never by the number of keys. Not
 * thread-safe: one sample per listing thread, merged after. */
#ifndef DTH_KEYSAMPLE_H
#define DTH_KEYSAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/util.h"

#define KEYSAMPLE_CAP 1024

struct keysample;

struct keysample *keysample_new(void);
void keysample_free(struct keysample *s);
/* The next listed key (len bytes; copied when kept); page_last: it ended a
 * page of the source's (s3_list_entry.page_last). */
void keysample_add(struct keysample *s, const char *key, size_t len, bool page_last);
/* Keys offered so far, and page boundaries among them. */
uint64_t keysample_total(const struct keysample *s);
uint64_t keysample_pages(const struct keysample *s);
/* Append src (the listing that went on after dst's) to dst: src's positions
 * move up by dst's total. src is left as it was. */
void keysample_append(struct keysample *dst, const struct keysample *src);

/* Up to n - 1 cut keys that cut the listing into n ranges of about equal
 * numbers of keys: cut i is the last key of range i - 1 (a key is in the
 * range below the cut equal to it). Page-grid keys when the grid has enough
 * (page_only: only those, else none), else fine-grid keys. Strictly
 * increasing; keys holding a NUL are never chosen. Appended to out
 * NUL-separated; returns how many (fewer than n - 1 when the sample has too
 * few keys). */
unsigned keysample_cuts(const struct keysample *s, unsigned n, bool page_only, struct buf *out);
/* Entries held (both grids): at most 2 * KEYSAMPLE_CAP. */
size_t keysample_entries(const struct keysample *s);

/* A compact binary form (for the task note "sample"), and back: 0, or
 * -EPROTO for bytes that are not one. */
void keysample_encode(const struct keysample *s, struct buf *out);
int keysample_decode(const void *data, size_t len, struct keysample **out) WUR;

#endif
