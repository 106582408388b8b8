/* Unit tests of agent/pipe.c: a ranged GET streamed through a small ring to
 * a consumer on another thread, against the scripted peer: resumption after
 * a reset mid-body (the next Range starts at the first byte not delivered),
 * refusal of a whole answer to a ranged GET before a byte reaches the ring,
 * a changed source, too many bytes, and a consumer that gives up. Run under
 * ThreadSanitizer too (tests/run-all.sh). */
#include "common/compat.h"

#include <errno.h>
#include <signal.h>

#include <openssl/evp.h>

#include "agent/pipe.h"
#include "remote/http.h"
#include "remote/retry.h"
#include "remote/s3.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

#define OBJ_SIZE (3u * 1024 * 1024 + 123)
#define RING	 (64u * 1024)

enum mode { M_OK, M_RESET_FIRST, M_WHOLE_200, M_STALE, M_ONE_MORE };

static unsigned char *obj;
static enum mode mode;
static unsigned served;

static void handler(void *ctx, const struct peer_request *rq, struct peer_answer *ans)
{
	(void)ctx;
	char range[128], im[128];
	unsigned long long a = 0, b = OBJ_SIZE - 1;
	if (peer_req_header(rq, "Range", range, sizeof(range)))
		sscanf(range, "bytes=%llu-%llu", &a, &b);
	unsigned n = served++;
	if (mode == M_STALE || (peer_req_header(rq, "If-Match", im, sizeof(im)) &&
				strcmp(im, "\"0123456789abcdef0123456789abcdef\"") != 0)) {
		ans->status = 412;
		return;
	}
	if (mode == M_WHOLE_200) {
		peer_add_body(ans, obj, OBJ_SIZE);
		return;
	}
	size_t len = (size_t)(b - a + 1) + (mode == M_ONE_MORE);
	ans->status = 206;
	peer_add_header(ans, "Content-Range: bytes %llu-%llu/%u", a, b, OBJ_SIZE);
	peer_add_body(ans, obj + a, len > OBJ_SIZE - a ? OBJ_SIZE - a : len);
	if (mode == M_ONE_MORE)
		peer_add_body(ans, "!", 1);
	if (mode == M_RESET_FIRST && n == 0)
		ans->fault = PEER_RESET_MID_BODY;
}

static void no_wait(unsigned ms)
{
	(void)ms;
}

/* Stream [off, off+len) through a pipe; the consumer stops after stop_after
 * bytes when non-zero. Returns pipe_finish's result; *got the bytes read. */
static int run(struct s3_client *c, uint64_t off, uint64_t len, size_t stop_after,
	       unsigned char *out, size_t *got, EVP_MD_CTX *md5)
{
	struct pipe_src src = {c, "bkt", "key", off, len, "0123456789abcdef0123456789abcdef", NULL};
	struct dth_err err;
	err_clear(&err);
	EVP_MD_CTX *const mds[2] = {md5, NULL};
	struct pipe *p = pipe_start(&src, RING, mds, &err);
	if (!p)
		return -999;
	*got = 0;
	int wrc = 0;
	for (;;) {
		if (stop_after && *got >= stop_after) {
			wrc = -EIO; /* the write gave up */
			break;
		}
		long n = pipe_read(p, out + *got, 7777);
		if (n < 0) {
			wrc = (int)n;
			break;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	int rc = pipe_finish(p, wrc, &err);
	return rc ? rc : wrc;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (http_global_init() != 0)
		return 1;
	obj = xmalloc(OBJ_SIZE);
	for (size_t i = 0; i < OBJ_SIZE; i++)
		obj[i] = (unsigned char)(i * 2654435761u >> 13);
	unsigned char *out = xmalloc(OBJ_SIZE + 16);
	struct http_engine_opts ho = {.connect_timeout_ms = 5000, .stall_timeout_s = 5};
	struct http_engine *http = http_engine_new(&ho);
	struct peer *peer = peer_start();
	if (!http || !peer) {
		printf("Bail out! no http engine or peer\n");
		return 1;
	}
	retry_set_pause_fn(no_wait);
	peer_set_handler(peer, handler, NULL);
	struct s3_config sc = {.name = "peer",
			       .endpoint = peer_url(peer),
			       .region = "us-east-1",
			       .path_style = true,
			       .http = http,
			       .retry = {4, 1, 10}};
	struct s3_client *c = s3_client_new(&sc);
	size_t got;

	mode = M_OK;
	served = 0;
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md5, EVP_md5(), NULL);
	int rc = run(c, 0, OBJ_SIZE, 0, out, &got, md5);
	ok(rc == 0 && got == OBJ_SIZE && memcmp(out, obj, OBJ_SIZE) == 0,
	   "the whole object through a 64 KiB ring, byte for byte (rc %d, %zu bytes)", rc, got);
	unsigned char d1[16], d2[16];
	unsigned int dl = 16;
	EVP_DigestFinal_ex(md5, d1, &dl);
	EVP_Digest(obj, OBJ_SIZE, d2, &dl, EVP_md5(), NULL);
	ok(memcmp(d1, d2, 16) == 0, "the MD5 fed on the way is the object's");
	EVP_MD_CTX_free(md5);

	rc = run(c, 1000000, 500000, 0, out, &got, NULL);
	ok(rc == 0 && got == 500000 && memcmp(out, obj + 1000000, 500000) == 0,
	   "a range from the middle");

	mode = M_RESET_FIRST;
	served = 0;
	peer_clear(peer);
	rc = run(c, 0, OBJ_SIZE, 0, out, &got, NULL);
	ok(rc == 0 && got == OBJ_SIZE && memcmp(out, obj, OBJ_SIZE) == 0,
	   "a reset mid-body is resumed, every byte once (rc %d)", rc);
	char r2[128] = "";
	const struct peer_request *rq = peer_request(peer, 1);
	unsigned long long from = 0;
	if (rq && peer_req_header(rq, "Range", r2, sizeof(r2)))
		sscanf(r2, "bytes=%llu-", &from);
	ok(peer_count(peer) == 2 && from > 0 && from < OBJ_SIZE,
	   "the second GET asks from the first byte not delivered (%s)", r2);

	mode = M_WHOLE_200;
	rc = run(c, 100, 1000, 0, out, &got, NULL);
	ok(rc == -ERANGE && got == 0,
	   "a 200 to a ranged GET: -ERANGE, no byte reached the ring "
	   "(rc %d, %zu bytes)",
	   rc, got);

	mode = M_STALE;
	rc = run(c, 0, 1000, 0, out, &got, NULL);
	ok(rc == -ESTALE && got == 0, "a changed source (412): -ESTALE (rc %d)", rc);

	mode = M_ONE_MORE;
	rc = run(c, 0, 1000, 0, out, &got, NULL);
	ok(rc == -EPROTO, "more bytes than asked: -EPROTO (rc %d)", rc);

	mode = M_OK;
	rc = run(c, 0, OBJ_SIZE, 200000, out, &got, NULL);
	ok(rc == -EIO && got >= 200000 && got < OBJ_SIZE,
	   "a consumer that gives up stops the GET (rc %d after %zu bytes)", rc, got);

	s3_client_free(c);
	peer_stop(peer);
	http_engine_free(http);
	free(obj);
	free(out);
	return tap_done();
}
