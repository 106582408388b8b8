/* dth mount SRC MOUNTPOINT: a read-only FUSE view of a bucket (or of a mirror
 * task's manifest). Checks everything it can before mounting (config, remote,
 * bucket, credentials, task, mountpoint) so that errors reach the caller;
 * then mounts, daemonises (the parent returns once the mount is usable),
 * opens the manifest (LMDB handles must not cross a fork), starts the read
 * threads and runs the multi-threaded session until unmounted or signalled. */
#include "common/compat.h"

#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/fs.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"
#include "remote/s3.h"

enum mount_opt {
	M_CONFIG = 256,
	M_MANIFEST,
	M_TASK,
	M_STATE,
	M_DIR_TTL,
	M_READAHEAD,
	M_CACHE_MEMORY,
	M_READ_CONC,
	M_UID,
	M_GID,
	M_FILE_MODE,
	M_DIR_MODE,
	M_PID_FILE,
	M_STATS_FILE,
	M_LOG_FILE,
	M_RETRIES,
	M_KERNEL_RA,
	M_FOREGROUND,
	M_OPTION,
	M_HELP,
};

static const struct cli_setting msettings[] = {
    {"foreground", 0, M_FOREGROUND, NULL,
     "stay in the foreground (default: return once the mount is ready)", NULL},
    {"option", 1, M_OPTION, "OPTS",
     "(-o) mount options: allow_other, default_permissions, ... and any setting below as "
     "name=value (e.g. config=FILE,dir_cache_ttl=30)",
     NULL},
    {"config", 1, M_CONFIG, "FILE", "config file (as for dth sync)", "config"},
    {"manifest", 0, M_MANIFEST, NULL,
     "list from the task's manifest (no list requests); needs --task", "manifest"},
    {"task", 1, M_TASK, "NAME", "the task whose manifest to serve", "task"},
    {"state", 1, M_STATE, "DIR", "state directory of the manifest", "state"},
    {"dir-cache-ttl", 1, M_DIR_TTL, "SECONDS",
     "keep listings and attributes this long (default 60; 1 with --manifest; 0: no cache)",
     "dir_cache_ttl"},
    {"readahead", 1, M_READAHEAD, "SIZE", "largest readahead window per open file (default 64M)",
     "readahead"},
    {"cache-memory", 1, M_CACHE_MEMORY, "SIZE",
     "memory for file data, however many files are open (default 256M)", "cache_memory"},
    {"read-concurrency", 1, M_READ_CONC, "N", "parallel ranged GETs (default 8)",
     "read_concurrency"},
    {"kernel-readahead", 1, M_KERNEL_RA, "SIZE",
     "the kernel's readahead for this mount, as root (default 1M; 0: the kernel's own)",
     "kernel_readahead"},
    {"uid", 1, M_UID, "N", "owner of every file (default: the caller)", "uid"},
    {"gid", 1, M_GID, "N", "group of every file (default: the caller's)", "gid"},
    {"file-mode", 1, M_FILE_MODE, "OCTAL", "permissions of files (default 0444)", "file_mode"},
    {"dir-mode", 1, M_DIR_MODE, "OCTAL", "permissions of directories (default 0555)", "dir_mode"},
    {"pid-file", 1, M_PID_FILE, "FILE", "write the serving process's pid here", "pid_file"},
    {"stats-file", 1, M_STATS_FILE, "FILE",
     "on unmount, write request counts and cache figures as JSON here", "stats_file"},
    {"log-file", 1, M_LOG_FILE, "FILE",
     "where messages go once in the background (default: nowhere)", "log_file"},
    {"retries", 1, M_RETRIES, "N", "retries of a failed request (default 7)", "retries"},
    {"help", 0, M_HELP, NULL, "this help", NULL},
};

/* -o options that mean something to mount(8) or fstab only. */
static const char *const ignored_okeys[] = {"_netdev", "nofail", "noauto",   "auto", "user",
					    "users",   "nouser", "defaults", "rw"};

static void mount_usage(FILE *f)
{
	fputs("usage: dth mount [options] REMOTE:BUCKET[/PREFIX] MOUNTPOINT\n"
	      "       dth mount --manifest --task NAME [options] [REMOTE:BUCKET[/PREFIX]] "
	      "MOUNTPOINT\n"
	      "  a read-only view of the objects; unmount with fusermount3 -u MOUNTPOINT\n"
	      "  or by signalling the process (SIGTERM, SIGINT)\n\noptions:\n"
	      "  -f                               same as --foreground\n",
	      f);
	cli_settings_help(f, msettings, ARRAY_SIZE(msettings));
	fputs("\nin /etc/fstab (mount.fuse3 runs `dth SRC MOUNTPOINT -o OPTS`):\n"
	      "  REMOTE:BUCKET/PREFIX /mnt/x fuse.dth ro,_netdev,config=/etc/dth/dth.conf 0 0\n"
	      "\nexit status: 0 unmounted cleanly, 1 failure while serving, 2 bad usage or "
	      "config,\n"
	      "             3 the source cannot be reached or refuses the credentials\n",
	      f);
}

struct mount_args {
	const char *config, *task, *state, *pid_file, *stats_file, *log_file;
	bool manifest, foreground;
	bool ttl_set;
	uint64_t ttl_s, readahead, cache_memory, read_conc, uid, gid, file_mode, dir_mode;
	uint64_t kernel_ra;
	struct buf fuse_opts; /* options passed on to libfuse, comma-separated */
};

static int set_value(struct mount_args *a, int id, const char *v)
{
	int rc = 0;
	switch (id) {
	case M_CONFIG:
		a->config = v;
		break;
	case M_MANIFEST:
		a->manifest = true;
		break;
	case M_TASK:
		a->task = v;
		break;
	case M_STATE:
		a->state = v;
		break;
	case M_DIR_TTL:
		rc = parse_u64(v, &a->ttl_s);
		if (!rc && a->ttl_s > 86400 * 365)
			rc = -ERANGE;
		a->ttl_set = true;
		break;
	case M_READAHEAD:
		rc = parse_size(v, &a->readahead);
		if (!rc && a->readahead > (4ULL << 30))
			rc = -ERANGE;
		break;
	case M_KERNEL_RA:
		rc = parse_size(v, &a->kernel_ra);
		if (!rc && a->kernel_ra > (64ULL << 20))
			rc = -ERANGE;
		break;
	case M_CACHE_MEMORY:
		rc = parse_size(v, &a->cache_memory);
		if (!rc && a->cache_memory < (1ULL << 20))
			rc = -ERANGE;
		break;
	case M_READ_CONC:
		rc = parse_u64(v, &a->read_conc);
		if (!rc && (a->read_conc < 1 || a->read_conc > 256))
			rc = -ERANGE;
		break;
	case M_UID:
		rc = parse_u64(v, &a->uid);
		break;
	case M_GID:
		rc = parse_u64(v, &a->gid);
		break;
	case M_FILE_MODE:
	case M_DIR_MODE: {
		char *end;
		errno = 0;
		unsigned long m = strtoul(v, &end, 8);
		if (errno || *end || end == v || m > 07777)
			rc = -EINVAL;
		else if (id == M_FILE_MODE)
			a->file_mode = m;
		else
			a->dir_mode = m;
		break;
	}
	case M_PID_FILE:
		a->pid_file = v;
		break;
	case M_STATS_FILE:
		a->stats_file = v;
		break;
	case M_LOG_FILE:
		a->log_file = v;
		break;
	case M_RETRIES: {
		uint64_t n;
		rc = parse_u64(v, &n);
		if (!rc && n > 100)
			rc = -ERANGE;
		if (!rc)
			cli_set_retries((int)n);
		break;
	}
	default:
		rc = -EINVAL;
	}
	return rc;
}

/* Split an -o list: dth's own settings are applied, mount(8)'s are dropped,
 * the rest go to libfuse. The string is modified. */
static int parse_o(struct mount_args *a, char *list)
{
	for (char *opt = list, *next; opt && *opt; opt = next) {
		next = strchr(opt, ',');
		if (next)
			*next++ = '\0';
		if (!*opt)
			continue;
		char *eq = strchr(opt, '=');
		size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
		const struct cli_setting *s = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(msettings); i++) {
			if (msettings[i].okey && strlen(msettings[i].okey) == klen &&
			    !strncmp(msettings[i].okey, opt, klen))
				s = &msettings[i];
		}
		if (s) {
			if (s->has_arg != (eq != NULL)) {
				cli_error("mount: option %s %s", s->okey,
					  s->has_arg ? "needs =VALUE" : "takes no value");
				return -EINVAL;
			}
			int rc = set_value(a, s->id, eq ? eq + 1 : NULL);
			if (rc) {
				cli_error("mount: bad value '%s' for %s%s", eq + 1, s->okey,
					  rc == -ERANGE ? " (out of range)" : "");
				return rc;
			}
			continue;
		}
		bool ignore = !strncmp(opt, "x-", 2) || !strncmp(opt, "comment=", 8);
		for (size_t i = 0; i < ARRAY_SIZE(ignored_okeys); i++)
			if (!strcmp(opt, ignored_okeys[i]))
				ignore = true;
		if (ignore)
			continue;
		if (a->fuse_opts.len)
			buf_addch(&a->fuse_opts, ',');
		buf_adds(&a->fuse_opts, opt);
	}
	return 0;
}

/* Absolute form of a path (relative paths break once daemonised in "/"). */
static char *abs_path(const char *p)
{
	if (!p || p[0] == '/')
		return p ? xstrdup(p) : NULL;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(p);
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s/%s", cwd, p);
	return buf_detach(&b, NULL);
}

/* The sysfs file of the kernel's readahead for the filesystem mounted on mnt
 * (the last mount there in /proc/self/mountinfo), appended to out; -ENOENT
 * if not found. Mount points there escape space, tab, newline and backslash
 * as octal. */
static int find_bdi(const char *mnt, struct buf *out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char line[4096], dev[64] = "";
	struct buf esc = BUF_INIT;
	for (const char *p = mnt; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			buf_addf(&esc, "\\%03o", (unsigned char)*p);
		else
			buf_addch(&esc, *p);
	}
	while (fgets(line, sizeof(line), f)) {
		char d[64], point[4096];
		if (sscanf(line, "%*s %*s %63s %*s %4095s", d, point) == 2 &&
		    !strcmp(point, esc.data))
			str_copy_fit(dev, d, sizeof(dev));
	}
	fclose(f);
	buf_release(&esc);
	if (!dev[0])
		return -ENOENT;
	buf_addf(out, "/sys/class/bdi/%s/read_ahead_kb", dev);
	return 0;
}

/* Going to the background: the parent waits until the child reports (one
 * byte: its exit status) that the mount is ready or that it failed, and exits
 * with that status. So the command returns only once the mount is usable, and
 * errors found after the fork still reach the caller's terminal. */
static int ready_fd = -1;

static int go_background(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		unsigned char st = EXIT_SOME_FAILED;
		ssize_t n;
		do
			n = read(p[0], &st, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? st : EXIT_SOME_FAILED);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	if (chdir("/"))
		return -1;
	return 0;
}

/* Tell the waiting parent (once), then detach from the terminal: stdin and
 * stdout to /dev/null, stderr to log_file when given (else /dev/null). */
static void report_ready(int status, const char *log_file)
{
	if (ready_fd < 0)
		return;
	unsigned char st = (unsigned char)status;
	(void)!write(ready_fd, &st, 1);
	close(ready_fd);
	ready_fd = -1;
	if (status != EXIT_DONE)
		return;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int err = log_file ? open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(err >= 0 ? err : nul, 2);
		close(nul);
	}
	if (err >= 0)
		close(err);
}

/* systemd's readiness protocol, when started by a Type=notify unit. */
static void sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)!sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	int rc = write(fd, text, len) == (ssize_t)len ? 0 : -EIO;
	close(fd);
	return rc;
}

static void write_stats(const char *path, struct fs *fs, struct s3_client *s3)
{
	uint64_t c[S3_REQ__COUNT];
	s3_client_counts(s3, c);
	struct fs_stats st;
	fs_get_stats(fs, &st);
	json_t *req = json_object();
	for (int k = 0; k < S3_REQ__COUNT; k++)
		json_object_set_new(req, s3_req_kind_name(k), json_integer((json_int_t)c[k]));
	json_t *o =
	    json_pack("{s:o, s:I, s:I, s:I, s:I, s:I}", "requests", req, "listings",
		      (json_int_t)st.listings, "lookups_remote", (json_int_t)st.lookups_remote,
		      "fetched_bytes", (json_int_t)st.ra.fetched_bytes, "fetches",
		      (json_int_t)st.ra.fetches, "peak_cache_bytes", (json_int_t)st.ra.peak_bytes);
	char *text = json_dumps(o, JSON_COMPACT);
	struct buf b = BUF_INIT;
	buf_adds(&b, text);
	buf_addch(&b, '\n');
	if (write_file(path, b.data))
		log_error("cannot write the stats file %s", path);
	free(text);
	buf_release(&b);
	json_decref(o);
}

/* The manifest side: the task, the key prefix of the mount's root within the
 * task, and the task's size. Prints why and returns EXIT_USAGE on error. */
static int open_task(struct manifest *m, const struct mount_args *a, const char *src_spec,
		     uint32_t *id, struct task_record *rec, struct buf *mf_prefix)
{
	if (manifest_task_find(m, a->task, id, rec)) {
		cli_error("no task called '%s' in %s (see dth manifest tasks)", a->task,
			  manifest_dir(m));
		return EXIT_USAGE;
	}
	if (strcmp(rec->kind, "s3")) {
		cli_error("task '%s' is a %s task; only s3 tasks can be mounted", a->task,
			  rec->kind);
		return EXIT_USAGE;
	}
	buf_reset(mf_prefix);
	if (!src_spec)
		return EXIT_DONE;
	/* SRC must be the task's source or a directory inside it. */
	char *tr = NULL, *tb = NULL, *tp = NULL, *sr = NULL, *sb = NULL, *sp = NULL;
	struct dth_err err;
	err_clear(&err);
	int rc = EXIT_USAGE;
	if (remote_parse_path(rec->src, &tr, &tb, &tp, &err) ||
	    remote_parse_path(src_spec, &sr, &sb, &sp, &err)) {
		cli_error("%s", err.message);
		goto out;
	}
	struct buf tpre = BUF_INIT, spre = BUF_INIT;
	buf_adds(&tpre, tp ? tp : "");
	if (tpre.len && tpre.data[tpre.len - 1] != '/')
		buf_addch(&tpre, '/');
	buf_adds(&spre, sp ? sp : "");
	if (spre.len && spre.data[spre.len - 1] != '/')
		buf_addch(&spre, '/');
	if (strcmp(tr, sr) || strcmp(tb, sb) || !str_startswith(spre.data, tpre.data)) {
		cli_error("%s is not inside the source of task '%s' (%s)", src_spec, a->task,
			  rec->src);
	} else {
		buf_adds(mf_prefix, spre.data + tpre.len);
		rc = EXIT_DONE;
	}
	buf_release(&tpre);
	buf_release(&spre);
out:
	free(tr);
	free(tb);
	free(tp);
	free(sr);
	free(sb);
	free(sp);
	return rc;
}

int cmd_mount(int argc, char **argv)
{
	struct mount_args a;
	memset(&a, 0, sizeof(a));
	a.readahead = 64ULL << 20;
	a.cache_memory = 256ULL << 20;
	a.read_conc = 8;
	a.kernel_ra = 1ULL << 20;
	a.uid = getuid();
	a.gid = getgid();
	a.file_mode = 0444;
	a.dir_mode = 0555;
	buf_init(&a.fuse_opts);
	int exitc = EXIT_USAGE;
	struct cli_ends ends;
	memset(&ends, 0, sizeof(ends));
	struct buf mf_prefix = BUF_INIT, fsname = BUF_INIT, opts = BUF_INIT;
	char *state_dir = NULL, *mnt = NULL, *pid_file = NULL, *stats_file = NULL, *log_file = NULL;
	struct fuse_session *se = NULL;
	struct fs *fs = NULL;
	struct manifest *m = NULL;
	bool mounted = false, handlers = false;
	struct fuse_args fargs = FUSE_ARGS_INIT(0, NULL);

	struct option lopts[ARRAY_SIZE(msettings) + 1];
	cli_settings_longopts(msettings, ARRAY_SIZE(msettings), lopts);
	optind = 1;
	opterr = 0;
	int c;
	/* Options may follow the operands (mount.fuse3 puts -o last). */
	while ((c = getopt_long(argc, argv, "fho:v", lopts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'f':
		case M_FOREGROUND:
			a.foreground = true;
			break;
		case 'o':
		case M_OPTION:
			if (parse_o(&a, optarg))
				goto out;
			break;
		case 'v':
			log_set_level(LOG_INFO);
			break;
		case 'h':
		case M_HELP:
			mount_usage(stdout);
			exitc = EXIT_DONE;
			goto out;
		case '?':
		case ':':
			cli_error("mount: unknown or incomplete option '%s'", argv[optind - 1]);
			mount_usage(stderr);
			goto out;
		default:
			rc = set_value(&a, c, optarg);
			if (rc) {
				cli_error("mount: bad value '%s' for --%s%s", optarg,
					  cli_setting_name(msettings, ARRAY_SIZE(msettings), c),
					  rc == -ERANGE ? " (out of range)" : "");
				goto out;
			}
		}
	}
	int nops = argc - optind;
	const char *src_spec = NULL, *mnt_arg = NULL;
	if (nops == 2) {
		src_spec = argv[optind];
		mnt_arg = argv[optind + 1];
	} else if (nops == 1 && a.manifest) {
		mnt_arg = argv[optind];
	} else {
		cli_error("mount needs a source (REMOTE:BUCKET[/PREFIX]) and a mountpoint");
		mount_usage(stderr);
		goto out;
	}
	if (a.manifest && !a.task) {
		cli_error("--manifest needs --task NAME");
		goto out;
	}
	if (!a.ttl_set)
		a.ttl_s = a.manifest ? 1 : 60;
	struct stat st;
	if (stat(mnt_arg, &st) != 0) {
		cli_error("mountpoint %s: %s", mnt_arg, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error("mountpoint %s: not a directory", mnt_arg);
		goto out;
	}
	mnt = abs_path(mnt_arg);
	pid_file = abs_path(a.pid_file);
	stats_file = abs_path(a.stats_file);
	log_file = abs_path(a.log_file);

	/* The manifest first (it may name the source), opened only to check. */
	uint32_t task_id = 0;
	struct task_record trec;
	memset(&trec, 0, sizeof(trec));
	if (a.manifest) {
		char *sd = cli_state_dir(a.state);
		state_dir = abs_path(sd);
		free(sd);
		struct dth_err err;
		err_clear(&err);
		struct manifest *chk = manifest_open(state_dir, MANIFEST_RDONLY, &err);
		if (!chk) {
			cli_error("manifest %s: %s", state_dir, err.message);
			goto out;
		}
		exitc = open_task(chk, &a, src_spec, &task_id, &trec, &mf_prefix);
		manifest_free(chk);
		if (exitc)
			goto out;
		exitc = EXIT_USAGE;
		if (!src_spec)
			src_spec = trec.src;
	}
	exitc = cli_ends_open(&ends, a.config, src_spec, NULL);
	if (exitc)
		goto out;
	{
		struct dth_err err;
		err_clear(&err);
		int rc = s3_head_bucket(ends.s.src, ends.s.src_bucket, &err);
		if (rc) {
			cli_error("%s: %s", src_spec, err.message);
			exitc = cli_exit_for_remote(rc);
			goto out;
		}
	}

	/* The session: read-only, named after the source. */
	buf_addf(&fsname, "%s", src_spec);
	buf_adds(&opts, "ro,default_permissions,subtype=dth,fsname=");
	for (const char *p = fsname.data; *p; p++) {
		if (*p == ',' || *p == '\\')
			buf_addch(&opts, '\\');
		buf_addch(&opts, *p);
	}
	if (a.fuse_opts.len) {
		buf_addch(&opts, ',');
		buf_add(&opts, a.fuse_opts.data, a.fuse_opts.len);
	}
	if (fuse_opt_add_arg(&fargs, "dth") || fuse_opt_add_arg(&fargs, "-o") ||
	    fuse_opt_add_arg(&fargs, opts.data)) {
		cli_error("out of memory");
		goto out;
	}
	struct fs_options fo = {
	    .dir_ttl_ms = a.ttl_s * 1000,
	    .cache_memory = a.cache_memory,
	    .readahead = a.readahead,
	    .read_threads = (unsigned)a.read_conc,
	    .uid = (uid_t)a.uid,
	    .gid = (gid_t)a.gid,
	    .file_mode = (mode_t)a.file_mode,
	    .dir_mode = (mode_t)a.dir_mode,
	};
	fs = fs_new(&fo);
	size_t ops_size;
	const struct fuse_lowlevel_ops *ops = fs_lowlevel_ops(&ops_size);
	se = fuse_session_new(&fargs, ops, ops_size, fs);
	if (!se) {
		cli_error("mount: libfuse refused the options '%s'", opts.data);
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		cli_error("mount: cannot install signal handlers");
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	handlers = true;
	if (fuse_session_mount(se, mnt) != 0) {
		cli_error("mount: cannot mount on %s (is /dev/fuse there, and fusermount3 "
			  "installed?)",
			  mnt);
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	mounted = true;
	struct buf bdi = BUF_INIT;
	if (a.kernel_ra && geteuid() == 0 && find_bdi(mnt, &bdi) == 0) {
		fs_set_kernel_readahead(fs, bdi.data, (unsigned)(a.kernel_ra >> 10));
	}
	buf_release(&bdi);
	if (!a.foreground && go_background()) {
		cli_error("mount: cannot go to the background: %s", strerror(errno));
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	struct fs_source fsrc = {
	    .s3 = ends.s.src,
	    .bucket = ends.s.src_bucket,
	    .prefix = ends.s.src_prefix,
	    .mf_prefix = buf_str(&mf_prefix),
	    .task = task_id,
	};
	if (a.manifest) {
		struct dth_err err;
		err_clear(&err);
		m = manifest_open(state_dir, MANIFEST_RDONLY, &err);
		if (!m) {
			log_error("manifest %s: %s", state_dir, err.message);
			exitc = EXIT_SOME_FAILED;
			goto out;
		}
		fsrc.m = m;
		struct task_stats ts;
		if (manifest_stats_get(m, task_id, &ts) == 0) {
			for (int s = 0; s < OBJ__COUNT; s++) {
				if (s == OBJ_DELETED)
					continue;
				fsrc.known_files += ts.count[s];
				fsrc.known_bytes += ts.bytes[s];
			}
		}
	}
	/* Read-cache blocks smaller than a chunk (whole chunks have buffers of
	 * their own, see readahead.c) and curl's buffers are allocated and freed
	 * all the time. Taken from the heap instead of fresh mmaps, their pages
	 * are reused without a fault and zeroing each; the heap may keep up to
	 * --cache-memory of them. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD,
		(int)(a.cache_memory < (1ULL << 30) ? a.cache_memory : 1ULL << 30));
	if (fs_start(fs, &fsrc)) {
		log_error("cannot start the read threads");
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	if (pid_file) {
		char pid[32];
		xsnprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (write_file(pid_file, pid))
			log_error("cannot write the pid file %s", pid_file);
	}
	log_info("mounted %s on %s", src_spec, mnt);
	/* Ready: the caller (our parent, or systemd) may use the mount now. */
	if (!a.foreground)
		report_ready(EXIT_DONE, log_file);
	sd_notify_msg("READY=1");
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 64);
	fuse_loop_cfg_set_idle_threads(lc, 16);
	int lrc = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	sd_notify_msg("STOPPING=1");
	/* 0 after an unmount, the signal's number after SIGTERM/SIGINT/SIGHUP
	 * (both clean ends), a negative errno when the session failed. */
	exitc = lrc >= 0 ? EXIT_DONE : EXIT_SOME_FAILED;
	if (lrc < 0)
		log_error("the fuse session ended with an error: %s", strerror(-lrc));
	if (stats_file)
		write_stats(stats_file, fs, ends.s.src);
	log_info("unmounted %s", mnt);
out:
	if (!a.foreground)
		report_ready(exitc, NULL); /* a failure before the mount was ready */
	if (se) {
		if (mounted)
			fuse_session_unmount(se);
		if (handlers)
			fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	if (pid_file && mounted)
		unlink(pid_file);
	fs_free(fs);
	manifest_free(m);
	fuse_opt_free_args(&fargs);
	cli_ends_close(&ends);
	buf_release(&a.fuse_opts);
	buf_release(&mf_prefix);
	buf_release(&fsname);
	buf_release(&opts);
	free(state_dir);
	free(mnt);
	free(pid_file);
	free(stats_file);
	free(log_file);
	return exitc;
}
