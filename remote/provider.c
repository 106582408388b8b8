#include "common/compat.h"

#include "remote/provider.h"

#include <errno.h>
#include <string.h>

/* Endpoint hosts (the endpoint is https://<host>); the region goes between
 * host_pre and host_post:
 *   aws      s3.REGION.amazonaws.com
 *   aws-cn   s3.REGION.amazonaws.com.cn (cn-north-1, cn-northwest-1)
 *   aliyun   s3.oss-REGION.aliyuncs.com (OSS's S3-compatible endpoint)
 *   tencent  cos.REGION.myqcloud.com
 *   qiniu    s3.REGION.qiniucs.com (Kodo's S3-compatible endpoint)
 *   gcs      storage.googleapis.com (XML API, region "auto") */
struct provider_entry {
	struct provider_preset preset;
	const char *host_pre;	   /* NULL: the endpoint must be given */
	const char *host_post;	   /* NULL: host_pre is the whole host (no region) */
	const char *region_prefix; /* region must start with this ("" for any) */
};

/* Ranges under radosgw's 4 MiB stripe, in whole 64 KiB blocks. */
#define CEPH_GET_RANGE_MAX ((uint64_t)4 * 1024 * 1024 - 64 * 1024)

static const struct provider_entry providers[] = {
    {{"aws", false, false, "us-east-1", 0}, "s3.", ".amazonaws.com", ""},
    {{"aws-cn", false, false, NULL, 0}, "s3.", ".amazonaws.com.cn", "cn-"},
    {{"aliyun", false, false, NULL, 0}, "s3.oss-", ".aliyuncs.com", ""},
    {{"tencent", false, false, NULL, 0}, "cos.", ".myqcloud.com", ""},
    {{"qiniu", false, false, NULL, 0}, "s3.", ".qiniucs.com", ""},
    {{"gcs", false, true, "auto", 0}, "storage.googleapis.com", NULL, ""},
    {{"minio", true, true, "us-east-1", 0}, NULL, NULL, ""},
    {{"ceph", true, true, "us-east-1", CEPH_GET_RANGE_MAX}, NULL, NULL, ""},
    {{"other", true, true, "us-east-1", 0}, NULL, NULL, ""},
};

static const struct provider_entry *provider_entry_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(providers); i++)
		if (strcmp(providers[i].preset.name, name) == 0)
			return &providers[i];
	return NULL;
}

const struct provider_preset *provider_at(size_t i)
{
	return i < ARRAY_SIZE(providers) ? &providers[i].preset : NULL;
}

const struct provider_preset *provider_find(const char *name)
{
	const struct provider_entry *e = provider_entry_find(name);
	return e ? &e->preset : NULL;
}

/* A region that can go into a host name: lowercase letters, digits, '-'. */
static bool provider_region_ok(const char *r)
{
	size_t n = strlen(r);
	if (n == 0 || n > 63 || r[0] == '-' || r[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = r[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

int provider_endpoint(const char *provider, const char *region, struct buf *out,
		      struct dth_err *err)
{
	const struct provider_entry *e = provider_entry_find(provider);
	if (!e)
		return err_set(
		    err, -EINVAL,
		    "unknown provider '%s' (expected aws, aws-cn, aliyun, tencent, qiniu, "
		    "gcs, minio, ceph or other)",
		    provider ? provider : "");
	if (e->preset.needs_endpoint)
		return err_set(err, -EINVAL, "provider %s needs an endpoint", e->preset.name);
	if (!e->host_post) {
		buf_addf(out, "https://%s", e->host_pre);
		return 0;
	}
	if (!region || !*region)
		region = e->preset.default_region;
	if (!region || !*region)
		return err_set(err, -EINVAL, "provider %s needs a region", e->preset.name);
	if (!provider_region_ok(region))
		return err_set(
		    err, -EINVAL,
		    "bad region '%s' for provider %s (lowercase letters, digits and '-')", region,
		    e->preset.name);
	if (!str_startswith(region, e->region_prefix))
		return err_set(err, -EINVAL,
			       "region '%s' is not a region of provider %s (expected %s...)",
			       region, e->preset.name, e->region_prefix);
	buf_addf(out, "https://%s%s%s", e->host_pre, region, e->host_post);
	return 0;
}
