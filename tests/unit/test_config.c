/* Unit tests: INI reader, config file and environment overlay, provider
 * presets, config file permissions, REMOTE:BUCKET paths, credential providers
 * (explicit, environment, profile files, instance metadata against a fake
 * IMDS and against moto's). */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/ini.h"
#include "common/util.h"
#include "remote/creds.h"
#include "remote/http.h"
#include "remote/provider.h"
#include "remote/registry.h"
#include "remote/remotes.h"
#include "remote/s3.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

/* Values that must never show up in an error message. */
#define SECRET1 "S3cr3tValueNumberOne+abc/xyz"
#define SECRET2 "T0kenValueNumberTwo+def/uvw"

static void skip(const char *reason)
{
	printf("ok %d # SKIP %s\n", ++tap_n, reason);
	fflush(stdout);
}

static bool has(const char *hay, const char *needle)
{
	return hay && needle && strstr(hay, needle) != NULL;
}

static bool no_secret(const char *msg)
{
	return !has(msg, SECRET1) && !has(msg, SECRET2) && !has(msg, "test-secret-key") &&
	       !has(msg, "test-session-token") && !has(msg, "fakeSecretFromImds") &&
	       !has(msg, "fakeTokenFromImds");
}

/* Write a temp file under /tmp with mode; path must hold 64 bytes. */
static int write_temp(const char *content, mode_t mode, char *path)
{
	str_copy_fit(path, "/tmp/dth-test-config-XXXXXX", 64);
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	size_t len = strlen(content);
	ssize_t w = write(fd, content, len);
	close(fd);
	if (w != (ssize_t)len)
		return -EIO;
	if (chmod(path, mode) != 0)
		return -errno;
	return 0;
}

/* ---- INI ---- */

struct ini_rec {
	struct buf log;
	int stop_at; /* return 42 at this key number (1-based); 0: never */
	int n;
};

static int ini_rec_key(void *ctx, const char *section, const char *key, const char *value,
		       unsigned line)
{
	struct ini_rec *r = ctx;
	buf_addf(&r->log, "%u[%s]%s=%s;", line, section, key, value);
	if (++r->n == r->stop_at)
		return 42;
	return 0;
}

static int ini_rec_section(void *ctx, const char *section, unsigned line)
{
	struct ini_rec *r = ctx;
	buf_addf(&r->log, "%u{%s};", line, section);
	return 0;
}

static void test_ini(void)
{
	struct dth_err err;
	struct ini_rec r = {BUF_INIT, 0, 0};
	const char *text = "\xEF\xBB\xBF"
			   "top = 1\r\n"
			   "# comment\n"
			   "  ; another comment\n"
			   "\n"
			   "[ sec one ]   # trailing comment\n"
			   "  key  =  value with spaces   \n"
			   "url = http://h/x#frag ; inline\n"
			   "eq = a=b\n"
			   "hash = a#b\n"
			   "empty =\n"
			   "[empty]\n"
			   "[two];c\n"
			   "last = x # y";
	err_clear(&err);
	int rc =
	    ini_parse_sections(text, strlen(text), "t.ini", ini_rec_key, ini_rec_section, &r, &err);
	is_int(rc, 0, "ini: valid text parses");
	is_str(buf_str(&r.log),
	       "1[]top=1;5{sec one};6[sec one]key=value with spaces;"
	       "7[sec one]url=http://h/x#frag;8[sec one]eq=a=b;9[sec one]hash=a#b;"
	       "10[sec one]empty=;11{empty};12{two};13[two]last=x;",
	       "ini: sections, keys, values, comments, CRLF and BOM handled");

	/* ini_parse without a section callback; a non-zero return stops it. */
	buf_reset(&r.log);
	r.n = 0;
	r.stop_at = 2;
	rc = ini_parse(text, strlen(text), "t.ini", ini_rec_key, &r, &err);
	is_int(rc, 42, "ini: callback's non-zero return stops and is returned");
	is_str(buf_str(&r.log), "1[]top=1;6[sec one]key=value with spaces;",
	       "ini: stopped after the second key");
	buf_release(&r.log);

	static const struct {
		const char *text;
		const char *prefix;
		const char *fragment;
	} bad[] = {
	    {"[remote a\nx = 1\n", "t.ini:1: ", "closing ']'"},
	    {"a = 1\nb = 2\njust words " SECRET1 "\n", "t.ini:3: ", "no '='"},
	    {"a = 1\n = 2\n", "t.ini:2: ", "empty key"},
	    {"[]\n", "t.ini:1: ", "empty section"},
	    {"[a] b\n", "t.ini:1: ", "after the section header"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct ini_rec q = {BUF_INIT, 0, 0};
		err_clear(&err);
		rc = ini_parse(bad[i].text, strlen(bad[i].text), "t.ini", ini_rec_key, &q, &err);
		is_int(rc, -EINVAL, "ini: bad input %zu is -EINVAL", i);
		ok(str_startswith(err.message, bad[i].prefix) && has(err.message, bad[i].fragment),
		   "ini: bad input %zu message names the line: %s", i, err.message);
		ok(no_secret(err.message), "ini: bad input %zu message quotes no secret", i);
		buf_release(&q.log);
	}
	{
		const char nul[] = "a = 1\nb = x\0y\n";
		struct ini_rec q = {BUF_INIT, 0, 0};
		err_clear(&err);
		rc = ini_parse(nul, sizeof(nul) - 1, "t.ini", ini_rec_key, &q, &err);
		ok(rc == -EINVAL && str_startswith(err.message, "t.ini:2: "),
		   "ini: nul byte rejected at its line: %s", err.message);
		buf_release(&q.log);
	}
}

/* ---- config text ---- */

static char *const no_env[] = {NULL};

static struct config *parse_ok(const char *text, char *const *envp, struct dth_err *err)
{
	struct config *cfg = config_new_empty();
	err_clear(err);
	int rc = config_parse_text(cfg, text, "t.conf", err);
	if (rc == 0)
		rc = config_finish(cfg, envp, err);
	if (rc) {
		printf("# unexpected error: %s\n", err->message);
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Parse then finish; returns the first error. */
static int parse_err(const char *text, char *const *envp, struct dth_err *err)
{
	struct config *cfg = config_new_empty();
	err_clear(err);
	int rc = config_parse_text(cfg, text, "t.conf", err);
	if (rc == 0)
		rc = config_finish(cfg, envp, err);
	config_free(cfg);
	return rc;
}

static void test_config_text(void)
{
	struct dth_err err;
	const char *text = "# dth config\n"
			   "[remote src]\n"
			   "type = s3\n"
			   "provider = ceph\n"
			   "endpoint = http://127.0.0.1:7480/   # trailing slash is fine\n"
			   "region = us-east-1\n"
			   "path_style = true\n"
			   "access_key_id = AKIDEXAMPLE\n"
			   "secret_access_key = " SECRET1 "\n"
			   "requester_pays = false\n"
			   "\n"
			   "[remote Dst]\n"
			   "provider = aws\n"
			   "region = eu-west-1\n"
			   "credentials = profile:prod\n"
			   "tls_verify = no\n"
			   "unsigned_payload = yes\n"
			   "ca_file = /etc/ssl/ca.pem\n"
			   "requester_pays = on\n"
			   "\n"
			   "[remote v6]\n"
			   "endpoint = HTTPS://[::1]:9000\n";
	struct config *cfg = parse_ok(text, no_env, &err);
	ok(cfg != NULL, "config: valid text parses");
	if (!cfg)
		return;
	ok(config_path(cfg) == NULL, "config: no path for parsed text");
	const struct remote_def *r = config_remote(cfg, "src");
	ok(r != NULL, "config: remote src found");
	if (r) {
		is_str(r->name, "src", "src: name");
		is_str(r->type, "s3", "src: type");
		is_str(r->provider, "ceph", "src: provider");
		is_str(r->endpoint, "http://127.0.0.1:7480", "src: endpoint, trailing '/' dropped");
		is_str(r->region, "us-east-1", "src: region");
		ok(r->path_style && r->path_style_set, "src: path_style set");
		is_str(r->access_key_id, "AKIDEXAMPLE", "src: access key id");
		is_str(r->secret_access_key, SECRET1, "src: secret");
		ok(!r->requester_pays && r->tls_verify && !r->unsigned_payload,
		   "src: booleans and tls_verify default true");
		ok(r->credentials == NULL && r->session_token == NULL, "src: no credentials mode");
		is_str(r->source, "t.conf:2", "src: source names the section line");
	}
	r = config_remote(cfg, "dst");
	ok(r != NULL, "config: remote lookup is case-insensitive");
	if (r) {
		is_str(r->name, "Dst", "Dst: name as written");
		is_str(r->type, "s3", "Dst: type defaults to s3");
		is_str(r->endpoint, "https://s3.eu-west-1.amazonaws.com",
		       "Dst: aws preset endpoint");
		ok(!r->path_style && !r->path_style_set, "Dst: aws is virtual-host by default");
		is_str(r->credentials, "profile:prod", "Dst: credentials mode");
		ok(!r->tls_verify && r->unsigned_payload && r->requester_pays, "Dst: booleans");
		is_str(r->ca_file, "/etc/ssl/ca.pem", "Dst: ca_file");
	}
	r = config_remote(cfg, "v6");
	ok(r != NULL, "config: remote v6 found");
	if (r) {
		is_str(r->endpoint, "https://[::1]:9000", "v6: IPv6 endpoint, scheme lowercased");
		is_str(r->provider, "other", "v6: endpoint without provider is 'other'");
		is_str(r->region, "us-east-1", "v6: region defaults to us-east-1");
		ok(r->path_style, "v6: path style by default");
	}
	ok(config_remote(cfg, "nope") == NULL, "config: unknown remote is NULL");
	config_free(cfg);

	/* Every bad input: -EINVAL and a message naming FILE:LINE. */
	static const struct {
		const char *text;
		const char *prefix;
		const char *fragment;
	} bad[] = {
	    {"[remote a]\nendpoint = http://h\nfoo = 1\n", "t.conf:3: ", "unknown key 'foo'"},
	    {"[remote a]\nprovider = azure\n", "t.conf:2: ", "unknown provider 'azure'"},
	    {"[remote a]\ntype = gcs\n", "t.conf:2: ", "unknown type 'gcs'"},
	    {"[remote a]\nendpoint = http://h\npath_style = maybe\n",
	     "t.conf:3: ", "bad boolean 'maybe' for path_style"},
	    {"[remote a]\nendpoint = http://h\ntls_verify = 2\n", "t.conf:3: ", "tls_verify"},
	    {"[remote a]\nendpoint = http://h:9000/bucket\n", "t.conf:2: ", "bad endpoint"},
	    {"[remote a]\nendpoint = http://h?x=1\n", "t.conf:2: ", "bad endpoint"},
	    {"[remote a]\nendpoint = ftp://h\n", "t.conf:2: ", "bad endpoint"},
	    {"[remote a]\nendpoint = h:9000\n", "t.conf:2: ", "bad endpoint"},
	    {"[remote a]\nendpoint = http://h:99999\n", "t.conf:2: ", "bad endpoint"},
	    {"[remote a]\nendpoint = http://user:" SECRET1 "@h\n", "t.conf:2: ", "bad endpoint"},
	    {"[remote a]\nendpoint = http://\n", "t.conf:2: ", "bad endpoint"},
	    {"[tasks x]\n", "t.conf:1: ", "unknown section [tasks x]"},
	    {"[task]\n", "t.conf:1: ", "[task] needs a name"},
	    {"[agent x]\n", "t.conf:1: ", "[agent x] takes no name"},
	    {"[task a]\n[task a]\n",
	     "t.conf:2: ", "duplicate section [task a] (first at t.conf:1)"},
	    {"[remote]\n", "t.conf:1: ", "unknown section"},
	    {"[remote a b]\n", "t.conf:1: ", "bad remote name"},
	    {"[remote a]\nendpoint = http://h\n[remote b]\nendpoint = http://h\n[remote a]\n",
	     "t.conf:5: ", "duplicate remote 'a' (first defined at t.conf:1)"},
	    {"[remote a]\nendpoint = http://h\n[remote A]\n", "t.conf:3: ", "duplicate remote"},
	    {"[remote a]\nendpoint http://h\n", "t.conf:2: ", "no '='"},
	    {"endpoint = http://h\n", "t.conf:1: ", "outside a section"},
	    {"[remote a]\nendpoint = http://h\nendpoint = http://g\n",
	     "t.conf:3: ", "endpoint given twice"},
	    {"[remote a]\nendpoint = http://h\ncredentials = keyring\n",
	     "t.conf:3: ", "unknown credentials 'keyring'"},
	    {"[remote a]\nendpoint = http://h\nregion =\n", "t.conf:3: ", "empty value for region"},
	    {"[remote a]\nendpoint = http://h\nregion = us east\n", "t.conf:3: ", "bad region"},
	    /* detected when presets are applied: the section's line is named */
	    {"\n[remote a]\nprovider = ceph\n", "t.conf:2: ", "provider ceph needs an endpoint"},
	    {"[remote a]\nprovider = aliyun\n", "t.conf:1: ", "provider aliyun needs a region"},
	    {"[remote a]\nprovider = aliyun\nendpoint = https://oss.example\n",
	     "t.conf:1: ", "needs a region"},
	    {"[remote a]\nprovider = aws-cn\nregion = us-east-1\n",
	     "t.conf:1: ", "not a region of provider aws-cn"},
	    {"[remote a]\nendpoint = http://h\nsecret_access_key = " SECRET1 "\n",
	     "t.conf:1: ", "secret_access_key given without access_key_id"},
	    {"[remote a]\nendpoint = http://h\naccess_key_id = AK\n",
	     "t.conf:1: ", "access_key_id given without secret_access_key"},
	    {"[remote a]\nendpoint = http://h\nsession_token = " SECRET2 "\n",
	     "t.conf:1: ", "session_token given without"},
	    {"[remote a]\nendpoint = http://h\naccess_key_id = AK\nsecret_access_key = " SECRET1
	     "\ncredentials = env\n",
	     "t.conf:1: ", "not both"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rc = parse_err(bad[i].text, no_env, &err);
		is_int(rc, -EINVAL, "config: bad input %zu is -EINVAL", i);
		ok(str_startswith(err.message, bad[i].prefix) && has(err.message, bad[i].fragment),
		   "config: bad input %zu: %s", i, err.message);
		ok(no_secret(err.message), "config: bad input %zu message holds no secret", i);
	}

	/* An unknown key that looks like a secret is not quoted. */
	int rc = parse_err("[remote a]\n" SECRET1 " = x\n", no_env, &err);
	ok(rc == -EINVAL && has(err.message, "t.conf:2: unknown key") && no_secret(err.message),
	   "config: odd unknown key not quoted: %s", err.message);
}

/* ---- environment overlay ---- */

static void test_env_overlay(void)
{
	struct dth_err err;
	const char *text = "[remote src]\n"
			   "provider = ceph\n"
			   "endpoint = http://127.0.0.1:7480\n"
			   "access_key_id = FILEKEY\n"
			   "secret_access_key = filesecret\n"
			   "[remote keep]\n"
			   "provider = minio\n"
			   "endpoint = http://127.0.0.1:9000\n"
			   "credentials = profile:x\n";
	char *env1[] = {
	    "HOME=/root",
	    "DTH_REMOTE_SRC_ENDPOINT=http://10.0.0.1:8080",
	    "DTH_REMOTE_SRC_SECRET_ACCESS_KEY=" SECRET1,
	    "DTH_REMOTE_SRC_PATH_STYLE=false",
	    "DTH_REMOTE_MY_DST_PROVIDER=qiniu",
	    "DTH_REMOTE_MY_DST_REGION=cn-east-1",
	    "DTH_REMOTE_MY_DST_ACCESS_KEY_ID=QNKEY",
	    "DTH_REMOTE_MY_DST_SECRET_ACCESS_KEY=" SECRET2,
	    "DTH_REMOTE_KEEP_ACCESS_KEY_ID=ENVKEY",
	    "DTH_REMOTE_KEEP_SECRET_ACCESS_KEY=envsecret",
	    "DTH_REMOTE_ENVONLY_TYPE=s3",
	    "DTH_REMOTE_ENVONLY_CREDENTIALS=anonymous",
	    "OTHER=1",
	    NULL,
	};
	struct config *cfg = parse_ok(text, env1, &err);
	ok(cfg != NULL, "env: overlay applies");
	if (!cfg)
		return;
	const struct remote_def *r = config_remote(cfg, "src");
	ok(r != NULL, "env: src still there");
	if (r) {
		is_str(r->endpoint, "http://10.0.0.1:8080", "env: endpoint overridden");
		is_str(r->secret_access_key, SECRET1, "env: secret overridden");
		is_str(r->access_key_id, "FILEKEY", "env: key id kept from the file");
		ok(!r->path_style && r->path_style_set, "env: path_style overridden");
		is_str(r->source, "t.conf:1", "env: source stays the file");
	}
	r = config_remote(cfg, "my_dst");
	ok(r != NULL, "env: remote defined only in env, NAME lowercased");
	if (r) {
		is_str(r->name, "my_dst", "env: name is lowercase");
		is_str(r->type, "s3", "env: type defaults to s3");
		is_str(r->endpoint, "https://s3.cn-east-1.qiniucs.com", "env: qiniu preset");
		is_str(r->access_key_id, "QNKEY", "env: key id");
		is_str(r->secret_access_key, SECRET2, "env: secret");
		is_str(r->source, "environment", "env: source is environment");
	}
	r = config_remote(cfg, "keep");
	ok(r && r->credentials == NULL && r->access_key_id && !strcmp(r->access_key_id, "ENVKEY"),
	   "env: keys from env replace the file's credentials mode");
	r = config_remote(cfg, "envonly");
	ok(r && !strcmp(r->credentials, "anonymous") && !strcmp(r->provider, "aws") &&
	       !strcmp(r->endpoint, "https://s3.us-east-1.amazonaws.com"),
	   "env: TYPE alone defines an aws remote");
	config_free(cfg);

	/* env credentials mode replaces the file's keys */
	char *env2[] = {"DTH_REMOTE_SRC_CREDENTIALS=instance", NULL};
	cfg = parse_ok(text, env2, &err);
	r = cfg ? config_remote(cfg, "src") : NULL;
	ok(r && !strcmp(r->credentials, "instance") && !r->access_key_id && !r->secret_access_key,
	   "env: credentials mode from env replaces the file's keys");
	config_free(cfg);

	static const struct {
		const char *var;
		const char *fragment;
	} bad[] = {
	    {"DTH_REMOTE_SRC_FOO=1", "DTH_REMOTE_SRC_FOO: expected DTH_REMOTE_<NAME>_<KEY>"},
	    {"DTH_REMOTE_ENDPOINT=http://h", "DTH_REMOTE_ENDPOINT: expected"},
	    {"DTH_REMOTE_LONE_REGION=us-east-1", "remote 'lone' is not in the config file"},
	    {"DTH_REMOTE_LONE_SECRET_ACCESS_KEY=" SECRET1, "DTH_REMOTE_LONE_TYPE, _ENDPOINT"},
	    {"DTH_REMOTE_SRC_PATH_STYLE=sometimes",
	     "environment variable DTH_REMOTE_SRC_PATH_STYLE: bad boolean"},
	    {"DTH_REMOTE_SRC_ENDPOINT=http://h/p", "DTH_REMOTE_SRC_ENDPOINT: bad endpoint"},
	    {"DTH_REMOTE_B@D_TYPE=s3", "bad remote name"},
	    {"DTH_REMOTE_X_PROVIDER=ceph",
	     "environment: remote x: provider ceph needs an endpoint"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *envp[] = {(char *)bad[i].var, NULL};
		int rc = parse_err(text, envp, &err);
		is_int(rc, -EINVAL, "env: bad variable %zu is -EINVAL", i);
		ok(has(err.message, bad[i].fragment) && no_secret(err.message),
		   "env: bad variable %zu: %s", i, err.message);
	}
}

/* ---- provider presets ---- */

/* get_range_max: the provider's value (ceph's under radosgw's 4 MiB stripe),
 * or the one given. */
static void test_get_range_max(void)
{
	struct dth_err err;
	static const struct {
		const char *conf;
		uint64_t want;
	} good[] = {
	    {"provider = ceph\nendpoint = http://h", 4 * 1024 * 1024 - 64 * 1024},
	    {"provider = minio\nendpoint = http://h", 0},
	    {"provider = aws", 0},
	    {"endpoint = http://h", 0},
	    {"provider = ceph\nendpoint = http://h\nget_range_max = 0", 0},
	    {"provider = ceph\nendpoint = http://h\nget_range_max = 8MiB", 8 * 1024 * 1024},
	    {"provider = aws\nget_range_max = 65536", 65536},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct buf t = BUF_INIT;
		buf_addf(&t, "[remote p]\n%s\n", good[i].conf);
		struct config *cfg = parse_ok(buf_str(&t), no_env, &err);
		const struct remote_def *r = cfg ? config_remote(cfg, "p") : NULL;
		ok(r && r->get_range_max == good[i].want, "get_range_max %zu: %llu", i,
		   r ? (unsigned long long)r->get_range_max : 0ULL);
		config_free(cfg);
		buf_release(&t);
	}
	char *env[] = {"DTH_REMOTE_E_PROVIDER=ceph", "DTH_REMOTE_E_ENDPOINT=http://h",
		       "DTH_REMOTE_E_GET_RANGE_MAX=2MiB", NULL};
	struct config *cfg = parse_ok("", env, &err);
	const struct remote_def *r = cfg ? config_remote(cfg, "e") : NULL;
	ok(r && r->get_range_max == 2 * 1024 * 1024, "get_range_max from the environment");
	config_free(cfg);
	static const char *const bad[] = {
	    "[remote p]\nendpoint = http://h\nget_range_max = 4k\n",
	    "[remote p]\nendpoint = http://h\nget_range_max = lots\n",
	    "[remote p]\nendpoint = http://h\nget_range_max = -1\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rc = parse_err(bad[i], no_env, &err);
		ok(rc == -EINVAL && has(err.message, "t.conf:3: bad get_range_max") &&
		       has(err.message, "at least 64KiB"),
		   "get_range_max bad %zu: %s", i, err.message);
	}
	int rc = parse_err("[remote r]\ntype = registry\nurl = https://h\nget_range_max = 1M\n",
			   no_env, &err);
	ok(rc == -EINVAL && has(err.message, "get_range_max does not apply"),
	   "get_range_max is for s3 remotes: %s", err.message);
}

static void test_presets(void)
{
	struct dth_err err;
	static const struct {
		const char *conf;
		const char *endpoint;
		const char *region;
		bool path_style;
	} good[] = {
	    {"provider = aws", "https://s3.us-east-1.amazonaws.com", "us-east-1", false},
	    {"provider = aws\nregion = ap-southeast-2", "https://s3.ap-southeast-2.amazonaws.com",
	     "ap-southeast-2", false},
	    {"provider = aws-cn\nregion = cn-north-1", "https://s3.cn-north-1.amazonaws.com.cn",
	     "cn-north-1", false},
	    {"provider = aws-cn\nregion = cn-northwest-1",
	     "https://s3.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1", false},
	    {"provider = aliyun\nregion = cn-hangzhou", "https://s3.oss-cn-hangzhou.aliyuncs.com",
	     "cn-hangzhou", false},
	    {"provider = tencent\nregion = ap-guangzhou", "https://cos.ap-guangzhou.myqcloud.com",
	     "ap-guangzhou", false},
	    {"provider = qiniu\nregion = cn-east-1", "https://s3.cn-east-1.qiniucs.com",
	     "cn-east-1", false},
	    {"provider = gcs", "https://storage.googleapis.com", "auto", true},
	    {"provider = minio\nendpoint = http://127.0.0.1:9000", "http://127.0.0.1:9000",
	     "us-east-1", true},
	    {"provider = ceph\nendpoint = http://127.0.0.1:7480\nregion = default",
	     "http://127.0.0.1:7480", "default", true},
	    {"provider = other\nendpoint = https://s3.example.com", "https://s3.example.com",
	     "us-east-1", true},
	    {"provider = ceph\nendpoint = http://bkt.localhost:7480\npath_style = false",
	     "http://bkt.localhost:7480", "us-east-1", false},
	    {"provider = aws\nendpoint = https://vpce.example:443\npath_style = true",
	     "https://vpce.example:443", "us-east-1", true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct buf t = BUF_INIT;
		buf_addf(&t, "[remote p]\n%s\n", good[i].conf);
		struct config *cfg = parse_ok(buf_str(&t), no_env, &err);
		const struct remote_def *r = cfg ? config_remote(cfg, "p") : NULL;
		is_str(r ? r->endpoint : NULL, good[i].endpoint, "preset %zu: endpoint", i);
		is_str(r ? r->region : NULL, good[i].region, "preset %zu: region", i);
		ok(r && r->path_style == good[i].path_style, "preset %zu: path style %d", i,
		   good[i].path_style);
		config_free(cfg);
		buf_release(&t);
	}

	/* provider.h directly */
	const char *names[] = {"aws", "aws-cn", "aliyun", "tencent", "qiniu",
			       "gcs", "minio",	"ceph",	  "other"};
	bool all = true;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const struct provider_preset *p = provider_find(names[i]);
		all = all && p && !strcmp(p->name, names[i]);
	}
	ok(all, "provider_find knows all nine providers");
	ok(provider_find("azure") == NULL && provider_find(NULL) == NULL,
	   "provider_find: unknown is NULL");
	ok(provider_find("minio")->needs_endpoint && provider_find("ceph")->needs_endpoint &&
	       provider_find("other")->needs_endpoint && !provider_find("aws")->needs_endpoint,
	   "needs_endpoint only for minio, ceph, other");
	is_str(provider_find("aws")->default_region, "us-east-1", "aws default region");
	is_str(provider_find("gcs")->default_region, "auto", "gcs default region");

	struct buf ep = BUF_INIT;
	err_clear(&err);
	int rc = provider_endpoint("aws", NULL, &ep, &err);
	ok(rc == 0 && !strcmp(buf_str(&ep), "https://s3.us-east-1.amazonaws.com"),
	   "provider_endpoint: aws without region uses us-east-1");
	buf_reset(&ep);
	rc = provider_endpoint("tencent", "", &ep, &err);
	ok(rc == -EINVAL && has(err.message, "needs a region"), "provider_endpoint: %s",
	   err.message);
	rc = provider_endpoint("ceph", "us-east-1", &ep, &err);
	ok(rc == -EINVAL && has(err.message, "needs an endpoint"), "provider_endpoint: %s",
	   err.message);
	rc = provider_endpoint("aws", "evil.com/x", &ep, &err);
	ok(rc == -EINVAL && has(err.message, "bad region"), "provider_endpoint: %s", err.message);
	rc = provider_endpoint("nope", "x", &ep, &err);
	ok(rc == -EINVAL && has(err.message, "unknown provider"), "provider_endpoint: %s",
	   err.message);
	ok(ep.len == 0, "provider_endpoint: nothing appended on error");
	buf_release(&ep);
	test_get_range_max();
}

/* ---- config files ---- */

static void test_config_files(void)
{
	struct dth_err err;
	char path[64];
	const char *secret_conf = "[remote s]\n"
				  "endpoint = http://127.0.0.1:7480\n"
				  "access_key_id = AK\n"
				  "secret_access_key = " SECRET1 "\n";
	ok(write_temp(secret_conf, 0644, path) == 0, "files: wrote a 0644 config with secrets");
	err_clear(&err);
	struct config *cfg = config_load(path, &err);
	ok(cfg == NULL && err.code == -EACCES, "files: 0644 with secrets refused (-EACCES)");
	struct buf want = BUF_INIT;
	buf_addf(&want,
		 "config file %s holds secrets and is readable by others (mode 0644): chmod 600 it",
		 path);
	is_str(err.message, buf_str(&want), "files: ssh-like message");
	ok(no_secret(err.message), "files: message holds no secret");
	buf_release(&want);

	chmod(path, 0640);
	cfg = config_load(path, &err);
	ok(cfg == NULL && err.code == -EACCES && has(err.message, "(mode 0640)"),
	   "files: group-readable refused too: %s", err.message);

	chmod(path, 0600);
	err_clear(&err);
	cfg = config_load(path, &err);
	ok(cfg != NULL, "files: 0600 with secrets loads (%s)", err.message);
	if (cfg) {
		is_str(config_path(cfg), path, "files: config_path is the file");
		const struct remote_def *r = config_remote(cfg, "s");
		ok(r && !strcmp(r->secret_access_key, SECRET1), "files: remote read from file");
		char src[80];
		snprintf(src, sizeof(src), "%s:1", path);
		is_str(r ? r->source : NULL, src, "files: source is FILE:LINE");
	}
	config_free(cfg);

	/* session_token alone also counts as a secret */
	char path2[64];
	ok(write_temp("[remote s]\nendpoint = http://h\naccess_key_id = AK\nsecret_access_key = "
		      "x\nsession_token = " SECRET2 "\n",
		      0604, path2) == 0,
	   "files: wrote a 0604 config");
	cfg = config_load(path2, &err);
	ok(cfg == NULL && err.code == -EACCES && no_secret(err.message),
	   "files: 0604 with a token refused");
	unlink(path2);

	/* no secrets: any mode is fine */
	ok(write_temp("[remote pub]\nprovider = gcs\ncredentials = anonymous\n", 0644, path2) == 0,
	   "files: wrote a 0644 config without secrets");
	cfg = config_load(path2, &err);
	ok(cfg && config_remote(cfg, "pub"), "files: 0644 without secrets loads");
	config_free(cfg);

	/* a syntax error in a file names the file and line */
	char path3[64];
	ok(write_temp("[remote a]\nendpoint = http://h\nbogus = 1\n", 0600, path3) == 0,
	   "files: wrote a bad config");
	cfg = config_load(path3, &err);
	buf_init(&want);
	buf_addf(&want, "%s:3: unknown key 'bogus'", path3);
	ok(cfg == NULL && err.code == -EINVAL && str_startswith(err.message, buf_str(&want)),
	   "files: error names FILE:LINE: %s", err.message);
	buf_release(&want);
	unlink(path3);

	/* an explicit file must exist */
	cfg = config_load("/tmp/dth-test-config-does-not-exist.conf", &err);
	ok(cfg == NULL && err.code == -ENOENT && has(err.message, "does-not-exist"),
	   "files: missing explicit file is -ENOENT: %s", err.message);

	/* $DTH_CONFIG, then ~/.config/dth/dth.conf */
	const char *old_home = getenv("HOME");
	char *saved_home = old_home ? xstrdup(old_home) : NULL;
	setenv("DTH_CONFIG", path2, 1);
	cfg = config_load(NULL, &err);
	ok(cfg && config_path(cfg) && !strcmp(config_path(cfg), path2),
	   "files: $DTH_CONFIG is read");
	config_free(cfg);
	setenv("DTH_CONFIG", "/tmp/dth-test-config-does-not-exist.conf", 1);
	cfg = config_load(NULL, &err);
	ok(cfg == NULL && err.code == -ENOENT, "files: $DTH_CONFIG must exist");
	unsetenv("DTH_CONFIG");

	char home[] = "/tmp/dth-test-home-XXXXXX";
	ok(mkdtemp(home) != NULL, "files: temp home");
	char dir1[128], dir2[128], conf[160];
	snprintf(dir1, sizeof(dir1), "%s/.config", home);
	snprintf(dir2, sizeof(dir2), "%s/.config/dth", home);
	snprintf(conf, sizeof(conf), "%s/dth.conf", dir2);
	mkdir(dir1, 0700);
	mkdir(dir2, 0700);
	setenv("HOME", home, 1);
	bool etc = access("/etc/dth/dth.conf", F_OK) == 0;
	cfg = config_load(NULL, &err);
	if (!etc)
		ok(cfg && config_path(cfg) == NULL, "files: no config file at all is fine");
	else
		skip("/etc/dth/dth.conf exists on this machine");
	config_free(cfg);
	FILE *f = fopen(conf, "w");
	if (f) {
		fputs("[remote home]\nprovider = gcs\n", f);
		fclose(f);
	}
	cfg = config_load(NULL, &err);
	ok(cfg && config_path(cfg) && !strcmp(config_path(cfg), conf) && config_remote(cfg, "home"),
	   "files: ~/.config/dth/dth.conf is read");
	config_free(cfg);
	unlink(conf);
	rmdir(dir2);
	rmdir(dir1);
	rmdir(home);
	if (saved_home)
		setenv("HOME", saved_home, 1);
	free(saved_home);

	unlink(path2);
	unlink(path);
}

/* ---- REMOTE:BUCKET[/PREFIX] ---- */

static void test_parse_path(void)
{
	struct dth_err err;
	static const struct {
		const char *in, *remote, *bucket, *prefix;
	} good[] = {
	    {"src:bucket", "src", "bucket", ""},
	    {"src:bucket/", "src", "bucket", ""},
	    {"src:bucket/a/b/", "src", "bucket", "a/b/"},
	    {"my-src:Legacy_Bucket.v1/x y:z?#", "my-src", "Legacy_Bucket.v1", "x y:z?#"},
	    {"s:b//double", "s", "b", "/double"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char *r = NULL, *b = NULL, *p = NULL;
		err_clear(&err);
		int rc = remote_parse_path(good[i].in, &r, &b, &p, &err);
		ok(rc == 0 && r && b && p && !strcmp(r, good[i].remote) &&
		       !strcmp(b, good[i].bucket) && !strcmp(p, good[i].prefix),
		   "parse_path '%s' -> %s | %s | %s", good[i].in, r ? r : "-", b ? b : "-",
		   p ? p : "-");
		free(r);
		free(b);
		free(p);
	}
	const char *bad[] = {"bucket",	       ":bucket", "src:",     "src:/prefix",
			     "src:bad bucket", "src:b*",  "/tmp/x:y", ""};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *r = (char *)1, *b = (char *)1, *p = (char *)1;
		err_clear(&err);
		int rc = remote_parse_path(bad[i], &r, &b, &p, &err);
		ok(rc == -EINVAL && !r && !b && !p && has(err.message, "REMOTE:BUCKET[/PREFIX]"),
		   "parse_path bad '%s': %s", bad[i], err.message);
	}
	char *lng = xmalloc(300);
	memcpy(lng, "s:", 2);
	memset(lng + 2, 'a', 280);
	lng[282] = '\0';
	char *r, *b, *p;
	int rc = remote_parse_path(lng, &r, &b, &p, &err);
	ok(rc == -EINVAL && has(err.message, "longer than 255"), "parse_path: bucket too long");
	lng[2 + 255] = '\0';
	rc = remote_parse_path(lng, &r, &b, &p, &err);
	ok(rc == 0 && strlen(b) == 255, "parse_path: 255-char bucket accepted");
	if (rc == 0) {
		free(r);
		free(b);
		free(p);
	}
	free(lng);
}

/* ---- credentials: explicit, environment, profiles ---- */

static void clear_aws_env(void)
{
	static const char *vars[] = {"AWS_ACCESS_KEY_ID",
				     "AWS_SECRET_ACCESS_KEY",
				     "AWS_SESSION_TOKEN",
				     "AWS_PROFILE",
				     "AWS_SHARED_CREDENTIALS_FILE",
				     "AWS_CONFIG_FILE",
				     "AWS_EC2_METADATA_DISABLED",
				     "AWS_EC2_METADATA_SERVICE_ENDPOINT",
				     "DTH_CONFIG"};
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
		unsetenv(vars[i]);
}

static void test_creds_basic(void)
{
	struct dth_err err;
	struct creds_value v;
	struct creds_spec spec = {0};

	ok(creds_parse_mode("env", &spec) == 0 && spec.mode == CREDS_ENV, "parse_mode env");
	ok(creds_parse_mode("instance", &spec) == 0 && spec.mode == CREDS_INSTANCE,
	   "parse_mode instance");
	ok(creds_parse_mode("anonymous", &spec) == 0 && spec.mode == CREDS_ANONYMOUS,
	   "parse_mode anonymous");
	const char *pm = "profile:prod";
	ok(creds_parse_mode(pm, &spec) == 0 && spec.mode == CREDS_PROFILE && spec.profile == pm + 8,
	   "parse_mode profile:NAME points into s");
	ok(creds_parse_mode("profile:", &spec) == -EINVAL &&
	       creds_parse_mode("keys", &spec) == -EINVAL &&
	       creds_parse_mode("", &spec) == -EINVAL && creds_parse_mode(NULL, &spec) == -EINVAL,
	   "parse_mode rejects bad values");

	/* explicit keys */
	struct creds_spec s = {.mode = CREDS_STATIC,
			       .access_key_id = "AKIDSTATIC",
			       .secret_access_key = SECRET1,
			       .session_token = SECRET2};
	err_clear(&err);
	struct creds_provider *p = creds_provider_new(&s, &err);
	ok(p != NULL, "static: provider made");
	memset(&v, 0x55, sizeof(v));
	ok(p && creds_provider_get(p, &v, &err) == 0, "static: get");
	ok(!strcmp(v.access_key_id, "AKIDSTATIC") && !strcmp(v.secret_access_key, SECRET1) &&
	       !strcmp(v.session_token, SECRET2) && v.expires == 0 && !v.anonymous,
	   "static: values");
	is_str(creds_provider_describe(p), "explicit keys", "static: describe");
	creds_provider_free(p);

	struct creds_spec half = {.mode = CREDS_STATIC, .secret_access_key = SECRET1};
	err_clear(&err);
	p = creds_provider_new(&half, &err);
	ok(p == NULL && err.code == -EINVAL && has(err.message, "access_key_id") &&
	       no_secret(err.message),
	   "static: secret without key id refused: %s", err.message);
	struct creds_spec none = {.mode = CREDS_STATIC};
	p = creds_provider_new(&none, &err);
	ok(p == NULL && err.code == -EINVAL, "static: no keys refused");

	/* chain with explicit keys ends there */
	struct creds_spec ch = {
	    .mode = CREDS_CHAIN, .access_key_id = "AKIDCHAIN", .secret_access_key = SECRET1};
	p = creds_provider_new(&ch, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "AKIDCHAIN"),
	   "chain: explicit keys first");
	is_str(creds_provider_describe(p), "explicit keys", "chain: describe explicit keys");
	creds_provider_free(p);

	/* anonymous */
	struct creds_spec an = {.mode = CREDS_ANONYMOUS};
	p = creds_provider_new(&an, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && v.anonymous && !v.access_key_id[0],
	   "anonymous: get gives anonymous");
	is_str(creds_provider_describe(p), "anonymous", "anonymous: describe");
	creds_provider_free(p);

	/* environment */
	clear_aws_env();
	struct creds_spec en = {.mode = CREDS_ENV};
	p = creds_provider_new(&en, &err);
	err_clear(&err);
	ok(p && creds_provider_get(p, &v, &err) == -ENOENT && has(err.message, "environment") &&
	       has(err.message, "AWS_ACCESS_KEY_ID"),
	   "env: unset is -ENOENT: %s", err.message);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET1, 1);
	err_clear(&err);
	ok(creds_provider_get(p, &v, &err) == -EACCES && no_secret(err.message),
	   "env: secret without key id: %s", err.message);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SESSION_TOKEN", SECRET2, 1);
	ok(creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "AKIDENV") &&
	       !strcmp(v.secret_access_key, SECRET1) && !strcmp(v.session_token, SECRET2),
	   "env: values from the environment");
	is_str(creds_provider_describe(p), "environment", "env: describe");
	creds_provider_free(p);

	/* chain picks the environment */
	struct creds_spec chn = {.mode = CREDS_CHAIN,
				 .credentials_file = "/nonexistent/creds",
				 .config_file = "/nonexistent/config"};
	p = creds_provider_new(&chn, &err);
	is_str(creds_provider_describe(p), "credential chain", "chain: describe before get");
	ok(p && creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "AKIDENV"),
	   "chain: environment used");
	is_str(creds_provider_describe(p), "environment", "chain: describe after get");
	creds_provider_free(p);
	clear_aws_env();

	/* chain with nothing at all */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	p = creds_provider_new(&chn, &err);
	err_clear(&err);
	int rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == -ENOENT && has(err.message, "no credentials found") &&
	       has(err.message, "environment") && has(err.message, "profile default") &&
	       has(err.message, "instance metadata: disabled"),
	   "chain: nothing found names every source: %s", err.message);
	creds_provider_free(p);
	clear_aws_env();
}

static void test_creds_profiles(void)
{
	struct dth_err err;
	struct creds_value v;
	char cpath[64], kpath[64];
	ok(write_temp("[default]\n"
		      "aws_access_key_id = AKIDDEFAULT\n"
		      "aws_secret_access_key = " SECRET1 "\n"
		      "\n"
		      "[prod]\n"
		      "aws_access_key_id=AKIDPROD\n"
		      "aws_secret_access_key=prodsecret\n"
		      "aws_session_token=" SECRET2 "\n"
		      "[both]\n"
		      "aws_access_key_id = AKIDBOTH_CREDS\n"
		      "aws_secret_access_key = bothsecret_creds\n"
		      "[half]\n"
		      "aws_access_key_id = AKIDHALF\n",
		      0600, cpath) == 0,
	   "profiles: wrote credentials file");
	ok(write_temp("[default]\n"
		      "region = us-west-2\n"
		      "[profile cfgonly]\n"
		      "region = eu-west-1\n"
		      "s3 =\n"
		      "  max_concurrent_requests = 20\n"
		      "aws_access_key_id = AKIDCFG\n"
		      "aws_secret_access_key = cfgsecret\n"
		      "[profile both]\n"
		      "aws_access_key_id = AKIDBOTH_CONFIG\n"
		      "aws_secret_access_key = bothsecret_config\n"
		      "[profile roleonly]\n"
		      "role_arn = arn:aws:iam::123456789012:role/x\n"
		      "source_profile = default\n"
		      "[prod]\n"
		      "aws_access_key_id = NOT_A_PROFILE_SECTION\n",
		      0600, kpath) == 0,
	   "profiles: wrote config file");

	static const struct {
		const char *profile;
		const char *key;
		const char *secret;
		const char *token;
	} good[] = {
	    {NULL, "AKIDDEFAULT", SECRET1, ""},
	    {"default", "AKIDDEFAULT", SECRET1, ""},
	    {"prod", "AKIDPROD", "prodsecret", SECRET2},
	    {"cfgonly", "AKIDCFG", "cfgsecret", ""},
	    {"both", "AKIDBOTH_CREDS", "bothsecret_creds", ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct creds_spec s = {.mode = CREDS_PROFILE,
				       .profile = good[i].profile,
				       .credentials_file = cpath,
				       .config_file = kpath};
		err_clear(&err);
		struct creds_provider *p = creds_provider_new(&s, &err);
		int rc = p ? creds_provider_get(p, &v, &err) : -1;
		ok(rc == 0 && !strcmp(v.access_key_id, good[i].key) &&
		       !strcmp(v.secret_access_key, good[i].secret) &&
		       !strcmp(v.session_token, good[i].token),
		   "profile %s: keys read (%s)", good[i].profile ? good[i].profile : "(none)",
		   err.message);
		char want[64];
		snprintf(want, sizeof(want), "profile %s",
			 good[i].profile ? good[i].profile : "default");
		is_str(creds_provider_describe(p), want, "profile: describe '%s'", want);
		creds_provider_free(p);
	}

	/* $AWS_PROFILE picks the profile when none is given */
	setenv("AWS_PROFILE", "prod", 1);
	struct creds_spec s = {
	    .mode = CREDS_PROFILE, .credentials_file = cpath, .config_file = kpath};
	struct creds_provider *p = creds_provider_new(&s, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "AKIDPROD"),
	   "profile: $AWS_PROFILE used");
	creds_provider_free(p);
	unsetenv("AWS_PROFILE");

	/* $AWS_SHARED_CREDENTIALS_FILE / $AWS_CONFIG_FILE */
	setenv("AWS_SHARED_CREDENTIALS_FILE", cpath, 1);
	setenv("AWS_CONFIG_FILE", kpath, 1);
	struct creds_spec se = {.mode = CREDS_PROFILE, .profile = "cfgonly"};
	p = creds_provider_new(&se, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "AKIDCFG"),
	   "profile: files from the environment");
	creds_provider_free(p);
	clear_aws_env();

	static const struct {
		const char *profile;
		int code;
		const char *fragment;
	} bad[] = {
	    {"missing", -ENOENT, "profile missing: not found in"},
	    {"roleonly", -ENOENT, "profile roleonly: no aws_access_key_id"},
	    {"half", -EACCES, "profile half: aws_access_key_id without aws_secret_access_key"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct creds_spec b = {.mode = CREDS_PROFILE,
				       .profile = bad[i].profile,
				       .credentials_file = cpath,
				       .config_file = kpath};
		p = creds_provider_new(&b, &err);
		err_clear(&err);
		int rc = p ? creds_provider_get(p, &v, &err) : -1;
		ok(rc == bad[i].code && has(err.message, bad[i].fragment) && no_secret(err.message),
		   "profile %s: error: %s", bad[i].profile, err.message);
		creds_provider_free(p);
	}
	struct creds_spec nof = {.mode = CREDS_PROFILE,
				 .profile = "x",
				 .credentials_file = "/nonexistent/c",
				 .config_file = "/nonexistent/k"};
	p = creds_provider_new(&nof, &err);
	err_clear(&err);
	ok(p && creds_provider_get(p, &v, &err) == -ENOENT && has(err.message, "/nonexistent/c"),
	   "profile: no files: %s", err.message);
	creds_provider_free(p);

	/* a broken file */
	char bpath[64];
	ok(write_temp("[default]\naws_secret_access_key " SECRET1 "\n", 0600, bpath) == 0,
	   "profiles: wrote a broken file");
	struct creds_spec br = {
	    .mode = CREDS_PROFILE, .credentials_file = bpath, .config_file = "/nonexistent/k"};
	p = creds_provider_new(&br, &err);
	err_clear(&err);
	int rc = p ? creds_provider_get(p, &v, &err) : -1;
	char want[96];
	snprintf(want, sizeof(want), "profile default: %s:2:", bpath);
	ok(rc == -EINVAL && has(err.message, want) && no_secret(err.message),
	   "profile: broken file named with its line: %s", err.message);
	creds_provider_free(p);
	unlink(bpath);

	/* the chain reaches the profile when the environment is empty */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	struct creds_spec ch = {
	    .mode = CREDS_CHAIN, .credentials_file = cpath, .config_file = kpath};
	p = creds_provider_new(&ch, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "AKIDDEFAULT"),
	   "chain: profile default used");
	is_str(creds_provider_describe(p), "profile default", "chain: describe profile");
	creds_provider_free(p);
	clear_aws_env();

	unlink(cpath);
	unlink(kpath);
}

/* ---- a fake instance metadata service (on the test peer, peer.h) ---- */

struct fake_imds {
	struct peer *peer;
	int port;
	pthread_mutex_t mu;
	/* behaviour */
	int token_status; /* 200: issue "tok-123" */
	int role_status;
	const char *role;
	int creds_status;
	char creds_body[1024];
	/* observations */
	int n_put, n_get_role, n_get_creds;
	int n_with_token, n_bad_token;
	char ttl[32];
};

/* One request (the peer's thread). */
static void fake_handle(void *ctx, const struct peer_request *rq, struct peer_answer *a)
{
	struct fake_imds *f = ctx;
	const char *method = rq->method, *path = rq->target;
	char token[128] = "", ttl[32] = "";
	peer_req_header(rq, "X-aws-ec2-metadata-token", token, sizeof(token));
	peer_req_header(rq, "X-aws-ec2-metadata-token-ttl-seconds", ttl, sizeof(ttl));
	static const char base[] = "/latest/meta-data/iam/security-credentials/";

	pthread_mutex_lock(&f->mu);
	int status = 404;
	const char *body = "";
	if (!strcmp(method, "PUT") && !strcmp(path, "/latest/api/token")) {
		f->n_put++;
		str_copy_fit(f->ttl, ttl, sizeof(f->ttl));
		status = f->token_status;
		body = status == 200 ? "tok-123" : "";
	} else if (!strcmp(method, "GET") && str_startswith(path, base)) {
		if (token[0])
			f->n_with_token++;
		if (f->token_status == 200 && strcmp(token, "tok-123") != 0) {
			f->n_bad_token++;
			status = 401;
		} else if (!strcmp(path, base)) {
			f->n_get_role++;
			status = f->role_status;
			body = f->role;
		} else if (!strcmp(path + strlen(base), f->role)) {
			f->n_get_creds++;
			status = f->creds_status;
			body = f->creds_body;
		}
	}
	a->status = status;
	peer_add_header(a, "Content-Type: text/plain");
	peer_add_body(a, body, strlen(body));
	pthread_mutex_unlock(&f->mu);
}

static int fake_start(struct fake_imds *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->peer = peer_start();
	if (!f->peer)
		return -1;
	f->port = peer_port(f->peer);
	peer_set_handler(f->peer, fake_handle, f);
	return 0;
}

static void fake_stop(struct fake_imds *f)
{
	peer_stop(f->peer);
	pthread_mutex_destroy(&f->mu);
}

static void fake_set_creds(struct fake_imds *f, const char *code, time_t expires)
{
	struct tm tm;
	gmtime_r(&expires, &tm);
	char exp[40];
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&f->mu);
	snprintf(f->creds_body, sizeof(f->creds_body),
		 "{\n  \"Code\" : \"%s\",\n  \"LastUpdated\" : \"2024-01-01T00:00:00Z\",\n"
		 "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAFAKEIMDS\",\n"
		 "  \"SecretAccessKey\" : \"fakeSecretFromImds\",\n"
		 "  \"Token\" : \"fakeTokenFromImds\",\n  \"Expiration\" : \"%s\"\n}\n",
		 code, exp);
	pthread_mutex_unlock(&f->mu);
}

static struct creds_provider *imds_provider(int port, struct dth_err *err)
{
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", port);
	struct creds_spec s = {.mode = CREDS_INSTANCE, .imds_endpoint = ep};
	return creds_provider_new(&s, err);
}

struct get_thread {
	struct creds_provider *p;
	int fails;
};

static void *get_many(void *arg)
{
	struct get_thread *g = arg;
	for (int i = 0; i < 50; i++) {
		struct creds_value v;
		struct dth_err e;
		if (creds_provider_get(g->p, &v, &e) != 0 ||
		    strcmp(v.access_key_id, "ASIAFAKEIMDS"))
			g->fails++;
	}
	return NULL;
}

static int imds_parse(const char *json, struct creds_value *v, struct dth_err *err)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, json);
	err_clear(err);
	int rc = creds_parse_imds("r", &b, v, err);
	buf_release(&b);
	return rc;
}

/* The instance metadata answers parsed directly (creds_parse_imds*). */
static void test_creds_imds_parse(void)
{
	struct creds_value v;
	struct dth_err err;
	is_int(imds_parse("{\"Code\":\"Success\",\"AccessKeyId\":\"AK\",\"SecretAccessKey\":"
			  "\"SK\",\"Token\":\"TK\",\"Expiration\":\"2030-01-02T03:04:05.5+01:00\"}",
			  &v, &err),
	       0, "imds parse: document");
	is_str(v.access_key_id, "AK", "imds parse: key id");
	is_str(v.session_token, "TK", "imds parse: token");
	is_int(v.expires, 1893553445 - 3600, "imds parse: expiration with an offset");

	/* found by fuzz_creds: the service's Code was put into the message as
	 * sent, control characters (a terminal escape, a newline) included */
	memset(&v, 0x5a, sizeof(v));
	struct creds_value before = v;
	is_int(imds_parse("{\"Code\":\"Bad\\u001b[2J\\nfake: line\"}", &v, &err), -EACCES,
	       "imds parse: Code other than Success refused");
	bool printable = true;
	for (const char *c = err.message; *c; c++)
		printable &= (unsigned char)*c >= 0x20 && *c != 0x7f;
	ok(printable, "imds parse: the message holds no control character (%s)", err.message);
	ok(strstr(err.message, "Bad?[2J?fake: line") != NULL, "imds parse: the code is shown");
	ok(memcmp(&v, &before, sizeof(v)) == 0, "imds parse: out untouched on an error");
	is_int(imds_parse("{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"SK\",\"Expiration\":"
			  "\"soon\"}",
			  &v, &err),
	       -EACCES, "imds parse: bad Expiration refused");
	ok(memcmp(&v, &before, sizeof(v)) == 0, "imds parse: out untouched (expiration)");

	/* found by fuzz_creds: an over-long key gave -EINVAL, which
	 * creds_provider_get's contract (-EACCES or -ENOENT) does not allow */
	struct buf doc = BUF_INIT;
	buf_adds(&doc, "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"");
	for (int i = 0; i < 200; i++)
		buf_addch(&doc, 'S');
	buf_adds(&doc, "\"}");
	is_int(imds_parse(buf_str(&doc), &v, &err), -EACCES,
	       "imds parse: over-long secret refused");
	is_int(err.code, -EACCES, "imds parse: err says -EACCES too");
	ok(!strstr(err.message, "SSSSSSSS"), "imds parse: the secret is not quoted");
	ok(memcmp(&v, &before, sizeof(v)) == 0, "imds parse: out untouched (length)");
	buf_release(&doc);

	struct buf body = BUF_INIT, role = BUF_INIT;
	buf_adds(&body, "  my-role@x \r\nother\n");
	is_int(creds_parse_imds_role(&body, &role), 0, "imds role: first line");
	is_str(buf_str(&role), "my-role@x", "imds role: trimmed");
	buf_reset(&body);
	buf_adds(&body, "../../x\n");
	is_int(creds_parse_imds_role(&body, &role), -EACCES, "imds role: a path refused");
	is_int(role.len, 0, "imds role: empty after a refusal");
	buf_release(&body);
	buf_release(&role);
}

static void test_creds_fake_imds(void)
{
	struct dth_err err;
	struct creds_value v;
	struct fake_imds f;
	if (fake_start(&f) != 0) {
		ok(0, "fake imds: could not start");
		return;
	}
	time_t now = time(NULL);

	/* IMDSv2: token then role then credentials */
	f.token_status = 200;
	f.role_status = 200;
	f.role = "dth-role";
	f.creds_status = 200;
	fake_set_creds(&f, "Success", now + 3600);
	struct creds_provider *p = imds_provider(f.port, &err);
	is_str(creds_provider_describe(p), "instance metadata", "imds: describe");
	err_clear(&err);
	int rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == 0 && !strcmp(v.access_key_id, "ASIAFAKEIMDS") &&
	       !strcmp(v.secret_access_key, "fakeSecretFromImds") &&
	       !strcmp(v.session_token, "fakeTokenFromImds"),
	   "imds v2: credentials (%s)", err.message);
	ok(v.expires >= now + 3599 && v.expires <= now + 3601, "imds v2: expiration parsed");
	ok(f.n_put == 1 && f.n_get_role == 1 && f.n_get_creds == 1 && f.n_bad_token == 0 &&
	       f.n_with_token == 2,
	   "imds v2: token PUT, then both GETs carry the token");
	is_str(f.ttl, "21600", "imds v2: token ttl header");

	/* cached: no new requests; threads share one cache */
	struct get_thread g[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		g[i].p = p;
		g[i].fails = 0;
		pthread_create(&th[i], NULL, get_many, &g[i]);
	}
	int fails = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		fails += g[i].fails;
	}
	ok(fails == 0 && f.n_get_creds == 1, "imds: 200 gets from 4 threads served from cache");
	creds_provider_free(p);

	/* expiring within 5 minutes: refreshed on every get */
	fake_set_creds(&f, "Success", now + 120);
	p = imds_provider(f.port, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && creds_provider_get(p, &v, &err) == 0,
	   "imds: two gets of soon-expiring credentials");
	ok(f.n_get_creds == 3, "imds: refreshed 5 minutes before expiry (%d fetches)",
	   f.n_get_creds);
	/* a failing refresh keeps credentials that are still valid */
	pthread_mutex_lock(&f.mu);
	f.creds_status = 500;
	pthread_mutex_unlock(&f.mu);
	err_clear(&err);
	rc = creds_provider_get(p, &v, &err);
	ok(rc == 0 && !strcmp(v.access_key_id, "ASIAFAKEIMDS") && f.n_get_creds == 4,
	   "imds: failed refresh falls back to still-valid credentials");
	creds_provider_free(p);
	/* ... but with nothing cached the failure is reported */
	p = imds_provider(f.port, &err);
	err_clear(&err);
	rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == -EACCES && has(err.message, "dth-role") && has(err.message, "500") &&
	       no_secret(err.message),
	   "imds: error status reported: %s", err.message);
	creds_provider_free(p);

	/* IMDSv1 fallback when the token PUT is refused */
	pthread_mutex_lock(&f.mu);
	f.token_status = 405;
	f.creds_status = 200;
	f.n_with_token = 0;
	f.n_get_creds = 0;
	pthread_mutex_unlock(&f.mu);
	fake_set_creds(&f, "Success", now + 3600);
	p = imds_provider(f.port, &err);
	err_clear(&err);
	rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == 0 && !strcmp(v.access_key_id, "ASIAFAKEIMDS") && f.n_get_creds == 1 &&
	       f.n_with_token == 0,
	   "imds v1: fallback without a token (%s)", err.message);
	creds_provider_free(p);

	/* bad Code */
	fake_set_creds(&f, "Failure", now + 3600);
	p = imds_provider(f.port, &err);
	err_clear(&err);
	rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == -EACCES && has(err.message, "Failure") && no_secret(err.message),
	   "imds: Code other than Success: %s", err.message);
	creds_provider_free(p);

	/* no role attached */
	pthread_mutex_lock(&f.mu);
	f.role_status = 404;
	pthread_mutex_unlock(&f.mu);
	p = imds_provider(f.port, &err);
	err_clear(&err);
	rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == -ENOENT && has(err.message, "no iam role"), "imds: no role: %s", err.message);
	creds_provider_free(p);

	/* the chain reaches instance metadata */
	pthread_mutex_lock(&f.mu);
	f.role_status = 200;
	f.token_status = 200;
	pthread_mutex_unlock(&f.mu);
	fake_set_creds(&f, "Success", now + 3600);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	struct creds_spec ch = {.mode = CREDS_CHAIN,
				.credentials_file = "/nonexistent/c",
				.config_file = "/nonexistent/k",
				.imds_endpoint = ep};
	p = creds_provider_new(&ch, &err);
	ok(p && creds_provider_get(p, &v, &err) == 0 && !strcmp(v.access_key_id, "ASIAFAKEIMDS"),
	   "chain: instance metadata used");
	is_str(creds_provider_describe(p), "instance metadata", "chain: describe instance");
	creds_provider_free(p);

	/* disabled */
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	p = imds_provider(f.port, &err);
	err_clear(&err);
	rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == -ENOENT && has(err.message, "AWS_EC2_METADATA_DISABLED"), "imds: disabled: %s",
	   err.message);
	creds_provider_free(p);
	clear_aws_env();

	int port = f.port;
	fake_stop(&f);

	/* nobody listening */
	p = imds_provider(port, &err);
	err_clear(&err);
	rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == -ENOENT && has(err.message, "unreachable"), "imds: unreachable: %s", err.message);
	creds_provider_free(p);
}

/* ---- moto's instance metadata ---- */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int run_quiet(char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool okc = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return okc;
}

static void test_creds_moto(void)
{
	char *probe[] = {"python3", "-c", "import moto.server", NULL};
	if (run_quiet(probe) != 0) {
		skip("python3 with moto is not available");
		return;
	}
	int port = free_port();
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	pid_t pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execlp("python3", "python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", portstr,
		       (char *)NULL);
		_exit(127);
	}
	bool up = false;
	for (int i = 0; pid > 0 && i < 600 && !up; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			pid = -1;
			break;
		}
		up = port_open(port);
		if (!up)
			usleep(100 * 1000);
	}
	if (!up) {
		skip("moto server did not start");
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return;
	}
	struct dth_err err;
	struct creds_value v;
	struct creds_provider *p = imds_provider(port, &err);
	err_clear(&err);
	time_t now = time(NULL);
	int rc = p ? creds_provider_get(p, &v, &err) : -1;
	ok(rc == 0, "moto imds: credentials fetched (%s)", err.message);
	ok(rc == 0 && v.access_key_id[0] && v.secret_access_key[0] && v.session_token[0],
	   "moto imds: key id, secret and token present");
	ok(rc == 0 && v.expires > now, "moto imds: expiration in the future");
	ok(rc == 0 && creds_provider_get(p, &v, &err) == 0, "moto imds: second get");
	creds_provider_free(p);

	kill(pid, SIGTERM);
	int st;
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			pid = -1;
			break;
		}
		usleep(100 * 1000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
}

/* ---- remote_open_s3 ---- */

static void test_open_s3(void)
{
	struct dth_err err;
	const char *text = "[remote k]\nprovider = ceph\nendpoint = http://127.0.0.1:7480\n"
			   "access_key_id = AKOPEN\nsecret_access_key = " SECRET1 "\n"
			   "[remote anon]\nprovider = gcs\ncredentials = anonymous\n"
			   "[remote chain]\nprovider = aws\nregion = eu-central-1\n";
	struct config *cfg = parse_ok(text, no_env, &err);
	struct http_engine_opts o = {.tls_verify = true};
	struct http_engine *http = http_engine_new(&o);
	ok(cfg && http, "open_s3: config and engine");
	if (!cfg || !http) {
		config_free(cfg);
		http_engine_free(http);
		return;
	}
	struct creds_provider *cp;
	struct s3_client *c;
	struct creds_value v;

	err_clear(&err);
	int rc = remote_open_s3(config_remote(cfg, "k"), http, &cp, &c, &err);
	ok(rc == 0 && cp && c, "open_s3: explicit keys (%s)", err.message);
	if (rc == 0) {
		is_str(s3_client_endpoint(c), "http://127.0.0.1:7480", "open_s3: client endpoint");
		is_str(s3_client_name(c), "k", "open_s3: client name");
		is_str(creds_provider_describe(cp), "explicit keys", "open_s3: creds describe");
		ok(creds_provider_get(cp, &v, &err) == 0 && !strcmp(v.access_key_id, "AKOPEN"),
		   "open_s3: creds carry the keys");
		s3_client_free(c);
		creds_provider_free(cp);
	}
	rc = remote_open_s3(config_remote(cfg, "anon"), http, &cp, &c, &err);
	ok(rc == 0 && creds_provider_get(cp, &v, &err) == 0 && v.anonymous,
	   "open_s3: anonymous remote");
	if (rc == 0) {
		is_str(s3_client_endpoint(c), "https://storage.googleapis.com",
		       "open_s3: gcs endpoint");
		s3_client_free(c);
		creds_provider_free(cp);
	}
	rc = remote_open_s3(config_remote(cfg, "chain"), http, &cp, &c, &err);
	ok(rc == 0, "open_s3: chain remote");
	if (rc == 0) {
		is_str(creds_provider_describe(cp), "credential chain", "open_s3: chain describe");
		s3_client_free(c);
		creds_provider_free(cp);
	}
	struct remote_def bad = {.name = "x", .type = "ftp"};
	rc = remote_open_s3(&bad, http, &cp, &c, &err);
	ok(rc == -EINVAL && cp == NULL && c == NULL, "open_s3: non-s3 type refused");
	http_engine_free(http);
	config_free(cfg);
}

/* ---- registry and ecr remotes ---- */

static void test_registry_remotes(void)
{
	struct dth_err err;
	const char *text = "[remote hub]\n"
			   "type = registry\n"
			   "url = https://registry-1.docker.io\n"
			   "[remote local]\n"
			   "type = registry\n"
			   "url = http://127.0.0.1:5001/\n"
			   "insecure = true\n"
			   "username = testuser\n"
			   "password = " SECRET1 "\n"
			   "retries = 2\n"
			   "[remote bare]\n"
			   "type = registry\n"
			   "url = quay.io\n"
			   "[remote ecr]\n"
			   "type = ecr\n"
			   "account = 123456789012\n"
			   "region = cn-north-1\n"
			   "credentials = instance\n"
			   "[remote ecr2]\n"
			   "type = ecr\n"
			   "account = 210987654321\n"
			   "region = us-east-1\n"
			   "access_key_id = AKECR\n"
			   "secret_access_key = " SECRET2 "\n"
			   "endpoint = http://127.0.0.1:5000\n";
	struct config *cfg = parse_ok(text, no_env, &err);
	ok(cfg != NULL, "registry: config parses");
	if (!cfg)
		return;
	const struct remote_def *r = config_remote(cfg, "hub");
	ok(r && !strcmp(r->type, "registry") && !strcmp(r->url, "https://registry-1.docker.io") &&
	       !r->username && !r->password && !r->insecure,
	   "registry: hub anonymous");
	ok(r && r->provider == NULL && r->endpoint == NULL, "registry: no s3 preset applied");
	r = config_remote(cfg, "local");
	ok(r && !strcmp(r->url, "http://127.0.0.1:5001") && r->insecure &&
	       !strcmp(r->username, "testuser") && !strcmp(r->password, SECRET1) && r->retries == 2,
	   "registry: local with basic credentials, trailing '/' dropped");
	r = config_remote(cfg, "bare");
	ok(r && !strcmp(r->url, "https://quay.io"), "registry: bare host means https");
	r = config_remote(cfg, "ecr");
	ok(r && !strcmp(r->type, "ecr") && !strcmp(r->account, "123456789012") &&
	       !strcmp(r->region, "cn-north-1") && !strcmp(r->credentials, "instance"),
	   "ecr: account, region, credentials");
	r = config_remote(cfg, "ecr2");
	ok(r && !strcmp(r->access_key_id, "AKECR") && !strcmp(r->secret_access_key, SECRET2) &&
	       !strcmp(r->endpoint, "http://127.0.0.1:5000"),
	   "ecr: explicit keys and an API endpoint override");

	/* opening */
	struct http_engine_opts o = {.tls_verify = true};
	struct http_engine *http = http_engine_new(&o);
	struct registry_client *rcl = NULL;
	err_clear(&err);
	int rc = remote_open_registry(config_remote(cfg, "local"), http, &rcl, &err);
	ok(rc == 0 && rcl, "open_registry: local (%s)", err.message);
	if (rcl) {
		is_str(registry_client_url(rcl), "http://127.0.0.1:5001", "open_registry: url");
		is_str(registry_client_name(rcl), "local", "open_registry: name");
		registry_client_free(rcl);
	}
	rc = remote_open_registry(config_remote(cfg, "hub"), http, &rcl, &err);
	ok(rc == 0 && rcl && registry_client_is_docker_hub(rcl), "open_registry: hub");
	registry_client_free(rcl);
	rc = remote_open_registry(config_remote(cfg, "ecr"), http, &rcl, &err);
	ok(rc == -EINVAL && rcl == NULL, "open_registry: an ecr remote refused");
	struct creds_provider *cp;
	struct s3_client *sc;
	rc = remote_open_s3(config_remote(cfg, "hub"), http, &cp, &sc, &err);
	ok(rc == -EINVAL && strstr(err.message, "registry"), "open_s3: a registry remote refused");
	http_engine_free(http);
	config_free(cfg);

	/* environment */
	char *env[] = {
	    "DTH_REMOTE_MIRROR_TYPE=registry",
	    "DTH_REMOTE_MIRROR_URL=http://127.0.0.1:5002",
	    "DTH_REMOTE_MIRROR_INSECURE=yes",
	    "DTH_REMOTE_MIRROR_USERNAME=envuser",
	    "DTH_REMOTE_MIRROR_PASSWORD=" SECRET2,
	    "DTH_REMOTE_HUB_USERNAME=me",
	    "DTH_REMOTE_HUB_PASSWORD=pw",
	    "DTH_REMOTE_E_ACCOUNT=123456789012",
	    "DTH_REMOTE_E_TYPE=ecr",
	    "DTH_REMOTE_E_REGION=eu-west-1",
	    NULL,
	};
	cfg = parse_ok("[remote hub]\ntype = registry\nurl = docker.io\n", env, &err);
	ok(cfg != NULL, "registry env: parses");
	if (cfg) {
		r = config_remote(cfg, "mirror");
		ok(r && !strcmp(r->type, "registry") && !strcmp(r->url, "http://127.0.0.1:5002") &&
		       r->insecure && !strcmp(r->username, "envuser") &&
		       !strcmp(r->password, SECRET2) && !strcmp(r->source, "environment"),
		   "registry env: a remote defined in the environment");
		r = config_remote(cfg, "hub");
		ok(r && !strcmp(r->username, "me") && !strcmp(r->password, "pw"),
		   "registry env: credentials overlaid on the file's remote");
		r = config_remote(cfg, "e");
		ok(r && !strcmp(r->type, "ecr") && !strcmp(r->region, "eu-west-1"),
		   "ecr env: defined in the environment");
		config_free(cfg);
	}

	/* errors */
	static const struct {
		const char *text;
		const char *want; /* in the message */
	} bad[] = {
	    {"[remote r]\ntype = registry\n", "needs url"},
	    {"[remote r]\ntype = registry\nurl = http://h:5000\n", "insecure = true"},
	    {"[remote r]\ntype = registry\nurl = https://h/path\n", "bad url"},
	    {"[remote r]\ntype = registry\nurl = https://h:99999\n", "bad url"},
	    {"[remote r]\ntype = registry\nurl = https://h\nusername = u\n",
	     "username given without password"},
	    {"[remote r]\ntype = registry\nurl = https://h\npassword = " SECRET1 "\n",
	     "password given without username"},
	    {"[remote r]\ntype = registry\nurl = https://h\nregion = us-east-1\n",
	     "region does not apply to a remote of type registry"},
	    {"[remote r]\nurl = https://h\ntype = registry\nprovider = aws\n",
	     "provider does not apply"},
	    {"[remote r]\ntype = registry\nurl = https://h\naccess_key_id = A\n"
	     "secret_access_key = B\n",
	     "access_key_id does not apply"},
	    {"[remote r]\ntype = registry\nurl = https://h\ninsecure = maybe\n", "bad boolean"},
	    {"[remote r]\ntype = ecr\nregion = us-east-1\n", "needs account"},
	    {"[remote r]\ntype = ecr\naccount = 123456789012\n", "needs a region"},
	    {"[remote r]\ntype = ecr\naccount = 12345\nregion = us-east-1\n", "bad account"},
	    {"[remote r]\ntype = ecr\naccount = 12345678901a\nregion = us-east-1\n", "bad account"},
	    {"[remote r]\ntype = ecr\naccount = 123456789012\nregion = us-east-1\n"
	     "username = u\n",
	     "username does not apply"},
	    {"[remote r]\ntype = ecr\naccount = 123456789012\nregion = us-east-1\n"
	     "access_key_id = A\n",
	     "access_key_id given without secret_access_key"},
	    {"[remote r]\ntype = ecr\naccount = 123456789012\nregion = us-east-1\n"
	     "credentials = instance\naccess_key_id = A\nsecret_access_key = B\n",
	     "not both"},
	    {"[remote r]\nprovider = aws\nregion = us-east-1\nurl = https://h\n",
	     "url does not apply to a remote of type s3"},
	    {"[remote r]\nprovider = aws\nregion = us-east-1\naccount = 123456789012\n",
	     "account does not apply"},
	    {"[remote r]\ntype = docker\n", "expected s3, registry or ecr"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		rc = parse_err(bad[i].text, no_env, &err);
		ok(rc == -EINVAL && strstr(err.message, bad[i].want) &&
		       !strstr(err.message, SECRET1),
		   "registry/ecr error %zu: %s", i, err.message);
	}
	char *env_bad[] = {"DTH_REMOTE_X_TYPE=registry", "DTH_REMOTE_X_URL=http://h", NULL};
	rc = parse_err("", env_bad, &err);
	ok(rc == -EINVAL && strstr(err.message, "insecure"), "registry env: plain http refused: %s",
	   err.message);
	char *env_pw[] = {"DTH_REMOTE_X_TYPE=registry", "DTH_REMOTE_X_URL=https://h",
			  "DTH_REMOTE_X_PASSWORD=" SECRET1, NULL};
	rc = parse_err("", env_pw, &err);
	ok(rc == -EINVAL && !strstr(err.message, SECRET1), "registry env: password never quoted");
}

/* [agent], [task NAME] and [mount NAME] are kept, keys in order, for the agent. */
static void test_other_sections(void)
{
	struct config *cfg = config_new_empty();
	struct dth_err err;
	const char *text = "[remote a]\nendpoint = http://h\n[task t1]\nsource = a:b\ninclude = x\n"
			   "include = y\n[agent]\nlisten = 127.0.0.1:1\n[task t2]\n[mount m]\n"
			   "source = a:b\n";
	is_int(config_parse_text(cfg, text, "t.conf", &err), 0, "sections parse");
	size_t n;
	const struct config_section *const *t = config_sections(cfg, "task", &n);
	is_int(n, 2, "two tasks");
	is_str(t[0]->name, "t1", "first task");
	is_int(t[0]->n, 3, "its three keys, a repeated one kept");
	is_str(t[0]->pairs[2].value, "y", "in order");
	is_int(t[0]->pairs[2].line, 6, "with their lines");
	is_int(t[1]->n, 0, "an empty section");
	const struct config_section *const *a = config_sections(cfg, "agent", &n);
	ok(n == 1 && !strcmp(a[0]->name, "") && !strcmp(a[0]->pairs[0].key, "listen"), "[agent]");
	config_sections(cfg, "mount", &n);
	is_int(n, 1, "one mount");
	config_sections(cfg, "bogus", &n);
	is_int(n, 0, "no such kind");
	ok(config_remote(cfg, "a") != NULL, "the remote is still there");
	config_free(cfg);
}

int main(void)
{
	test_other_sections();
	clear_aws_env();
	/* DTH_REMOTE_* of the caller would leak into config_load. */
	for (;;) {
		char **e = environ;
		while (*e && !str_startswith(*e, "DTH_REMOTE_"))
			e++;
		if (!*e)
			break;
		char name[256];
		size_t n = strcspn(*e, "=");
		snprintf(name, sizeof(name), "%.*s", (int)n, *e);
		unsetenv(name);
	}
	if (http_global_init() != 0) {
		ok(0, "http_global_init");
		return tap_done();
	}
	test_ini();
	test_config_text();
	test_env_overlay();
	test_presets();
	test_config_files();
	test_parse_path();
	test_creds_basic();
	test_creds_profiles();
	test_creds_imds_parse();
	test_creds_fake_imds();
	test_creds_moto();
	test_open_s3();
	test_registry_remotes();
	return tap_done();
}
