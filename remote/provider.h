/* Provider presets: endpoint templates and addressing style by provider and
 * region (AWS global and China, Aliyun OSS, Tencent COS, Qiniu Kodo, GCS XML
 * API, MinIO, Ceph, other). */
#ifndef DTH_PROVIDER_H
#define DTH_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

struct provider_preset {
	const char *name;
	bool needs_endpoint; /* minio, ceph, other: endpoint must be given */
	bool path_style;     /* default addressing */
	const char *default_region;
	/* The largest byte range one GET asks for (0: no limit): a longer read
	 * is split into equal ranges under it. Ceph radosgw stores an object in
	 * 4 MiB stripes, and a range that covers a whole stripe makes it read
	 * the stripe into a freshly mapped buffer, faulting in every page. */
	uint64_t get_range_max;
};

/* The i-th preset (0, 1, ... in a fixed order), or NULL past the last. */
const struct provider_preset *provider_at(size_t i);
/* The preset called name, or NULL. */
const struct provider_preset *provider_find(const char *name);
/* Append the endpoint ("https://...") for provider in region. -EINVAL when the
 * provider needs an explicit endpoint or the region is missing/invalid. */
int provider_endpoint(const char *provider, const char *region, struct buf *out,
		      struct dth_err *err) WUR;

#endif
