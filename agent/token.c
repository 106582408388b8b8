/* The agent's bearer token (see token.h).
 *
 * The file is read with O_NOFOLLOW into a buffer in secret memory; the hex
 * text is kept there. A new token goes to a 0600 temporary file in the state
 * directory (mkostemp), is synced, then link()ed to agent.token: link never
 * replaces an existing name, so when two agents race the second one reads the
 * first one's token. */
#include "common/compat.h"

#include "agent/token.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/secret.h"

#define READ_MAX 256 /* a token file is 65 bytes; anything far longer is not one */

struct token {
	char *hex; /* TOKEN_HEX_LEN characters and a NUL, in secret memory */
	char *path;
};

void token_free(struct token *t)
{
	if (!t)
		return;
	secret_free(t->hex);
	free(t->path);
	free(t);
}

const char *token_value(const struct token *t)
{
	return t->hex;
}

const char *token_path(const struct token *t)
{
	return t->path;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int token_load(const char *path, struct token **out, struct dth_err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return err_set(err, -EACCES, "token file %s is a symbolic link", path);
		return err_set(err, -e, "token file %s: %s", path, strerror(e));
	}
	int rc = 0;
	char *b = secret_alloc(READ_MAX + 1);
	size_t n = 0;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = err_set(err, -errno, "token file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(err, -EINVAL, "token file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		rc = err_set(err, -EACCES,
			     "token file %s may be read or written by others (mode %04o): chmod "
			     "600 it",
			     path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, b + n, READ_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(err, -errno, "token file %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0 || (n += (size_t)r) == READ_MAX)
			break;
	}
	if (n == TOKEN_HEX_LEN + 1 && b[TOKEN_HEX_LEN] == '\n')
		n--;
	if (n != TOKEN_HEX_LEN || !is_lower_hex(b, n)) {
		rc = err_set(err, -EINVAL,
			     "token file %s does not hold a token (%d lowercase hex characters "
			     "and a newline)",
			     path, TOKEN_HEX_LEN);
		goto out;
	}
	b[n] = '\0';
	struct token *t = xcalloc(1, sizeof(*t));
	t->hex = secret_strndup(b, TOKEN_HEX_LEN);
	t->path = xstrdup(path);
	*out = t;
out:
	secret_free(b);
	close(fd);
	return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write a new token to a temporary file and link it to path. 0, -EEXIST
 * (someone else made path first), or an errno with err set. */
static int token_create(const char *dir, const char *path, struct dth_err *err)
{
	unsigned char raw[TOKEN_HEX_LEN / 2];
	char *text = secret_alloc(TOKEN_HEX_LEN + 2);
	struct buf tmp = BUF_INIT;
	int fd = -1, rc = 0;
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(err, -errno, "getrandom: %s", strerror(errno));
			goto out;
		}
		got += (size_t)r;
	}
	hex_encode(raw, sizeof(raw), text);
	text[TOKEN_HEX_LEN] = '\n';
	buf_addf(&tmp, "%s/.%s.XXXXXX", dir, TOKEN_FILE);
	fd = mkostemp(tmp.data, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		rc = err_set(err, -errno, "cannot create a token file in %s: %s", dir,
			     strerror(errno));
		goto out;
	}
	rc = write_all(fd, text, TOKEN_HEX_LEN + 1);
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	if (rc) {
		err_set(err, rc, "cannot write %s: %s", tmp.data, strerror(-rc));
		goto out;
	}
	if (link(tmp.data, path) != 0) {
		rc = -errno;
		if (rc != -EEXIST)
			err_set(err, rc, "cannot create %s: %s", path, strerror(-rc));
		goto out;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) != 0)
			rc = err_set(err, -errno, "fsync %s: %s", dir, strerror(errno));
		close(dfd);
	}
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp.data);
	}
	secret_wipe(raw, sizeof(raw));
	secret_free(text);
	buf_release(&tmp);
	return rc;
}

int token_load_or_create(const char *state_dir, struct token **out, bool *created,
			 struct dth_err *err)
{
	*out = NULL;
	if (created)
		*created = false;
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return err_set(err, -errno, "cannot create the state directory %s: %s", state_dir,
			       strerror(errno));
	struct buf path = BUF_INIT;
	buf_addf(&path, "%s/%s", state_dir, TOKEN_FILE);
	int rc = token_load(path.data, out, err);
	if (rc == -ENOENT) {
		err_clear(err);
		rc = token_create(state_dir, path.data, err);
		if (rc == 0 && created)
			*created = true;
		if (rc == 0 || rc == -EEXIST)
			rc = token_load(path.data, out, err);
	}
	buf_release(&path);
	return rc;
}

bool token_check(const struct token *t, const char *authorization)
{
	if (!t || !authorization)
		return false;
	const char *p = authorization;
	bool scheme = strncasecmp(p, "Bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t');
	if (scheme) {
		p += 6;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	/* A fixed-size copy of the candidate, compared whole with the token
	 * whatever its length: the time depends on neither's content. */
	size_t n = strnlen(p, TOKEN_HEX_LEN + 1);
	char cand[TOKEN_HEX_LEN];
	memset(cand, 0, sizeof(cand));
	memcpy(cand, p, n < TOKEN_HEX_LEN ? n : TOKEN_HEX_LEN);
	int diff = CRYPTO_memcmp(cand, t->hex, TOKEN_HEX_LEN);
	secret_wipe(cand, sizeof(cand));
	return scheme & (n == TOKEN_HEX_LEN) & (diff == 0);
}

/* ---- derived secrets and signatures ---- */

static void hex_of(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void hmac_hex(const void *key, size_t keylen, const void *data, size_t len, char out[65])
{
	unsigned char mac[32];
	unsigned int maclen = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, mac, &maclen) || maclen != 32)
		memset(mac, 0, sizeof(mac)); /* never equal to a real signature's hex */
	hex_of(mac, 32, out);
	secret_wipe(mac, sizeof(mac));
}

void token_derive(const struct token *t, const char *purpose, char out[TOKEN_HEX_LEN + 1])
{
	hmac_hex(t->hex, TOKEN_HEX_LEN, purpose, strlen(purpose), out);
}

bool token_secret_equal(const char *secret, const char *candidate)
{
	if (!candidate)
		return false;
	size_t n = strnlen(candidate, TOKEN_HEX_LEN + 1);
	char cand[TOKEN_HEX_LEN];
	memset(cand, 0, sizeof(cand));
	memcpy(cand, candidate, n < TOKEN_HEX_LEN ? n : TOKEN_HEX_LEN);
	int diff = CRYPTO_memcmp(cand, secret, TOKEN_HEX_LEN);
	secret_wipe(cand, sizeof(cand));
	return (n == TOKEN_HEX_LEN) & (diff == 0);
}

void token_hmac_sign(const char *secret, const void *body, size_t len, char sig_out[72])
{
	memcpy(sig_out, "sha256=", 7);
	hmac_hex(secret, TOKEN_HEX_LEN, body, len, sig_out + 7);
}

bool token_hmac_check(const char *secret, const void *body, size_t len, const char *signature)
{
	if (!signature || strncasecmp(signature, "sha256=", 7))
		return false;
	char want[72];
	token_hmac_sign(secret, body, len, want);
	bool same = token_secret_equal(want + 7, signature + 7);
	secret_wipe(want, sizeof(want));
	return same;
}
