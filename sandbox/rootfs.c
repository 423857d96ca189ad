/* SPDX-License-Identifier: MIT */
/*
 * rootfs.c: the sandbox's root file system, built on a tmpfs inside the
 * new mount namespace: the host's /usr as the read-only lower layer of an
 * overlay (writes land in the sandbox's own upper layer), an /etc made of
 * a few allow-listed host files (no shadow, no ssh keys, no pincer
 * config), a fresh /proc for the new pid namespace, a minimal /dev, a
 * sized /tmp, and the sandbox's /workspace, /data and /run/pincer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

static void	mkpath(const char *, const char *, mode_t);
static void	link_at(const char *, const char *, const char *);
static void	bind(const char *, const char *, const char *, bool, bool);
static void	write_file(const char *, const char *, const char *);
static void	build_etc(const char *);
static void	build_dev(const char *);
static void	trust_egress_ca(const char *);

/*
 * Host /etc files a program may need and that hold nothing private.
 * passwd and group are written fresh, so host account names stay out.
 */
static const char *const etc_files[] = {
	"nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	"ssl", "ca-certificates", "alternatives", "localtime", "timezone",
	"mime.types", "services", "protocols", "profile", "bash.bashrc",
	"inputrc", "shells", "debian_version", "terminfo", "magic",
	"gai.conf", "host.conf", NULL
};

static const char *const dev_nodes[] = { "null", "zero", "full", "random",
	"urandom", "tty", NULL };

/* Run from inside the sandbox folder: every path here is relative. */
void
rootfs_build(long tmp_mb, const char *rootfs, const char *const *tools,
    int ntools)
{
	const char	*root = "root";
	char		 path[PATH_MAX], opt[256];
	int		 i;

	/* Nothing mounted here may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
		die("make / private: %s", strerror(errno));
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV,
	    "mode=0755,size=8m") == -1)
		die("tmpfs %s: %s", root, strerror(errno));
	mkpath(root, "usr", 0755);
	mkpath(root, "etc", 0755);
	mkpath(root, "proc", 0555);
	mkpath(root, "dev", 0755);
	mkpath(root, "tmp", 01777);
	mkpath(root, "workspace", 0755);
	mkpath(root, "data", 0755);
	mkpath(root, "run", 0755);
	mkpath(root, "run/pincer", 0755);
	mkpath(root, "root", 0700);
	mkpath(root, "var", 0755);
	mkpath(root, "var/tmp", 01777);
	/* Debian's merged /usr. */
	link_at(root, "bin", "usr/bin");
	link_at(root, "sbin", "usr/sbin");
	link_at(root, "lib", "usr/lib");
	if (access("/usr/lib64", F_OK) == 0)
		link_at(root, "lib64", "usr/lib64");

	/*
	 * The lower layer: the host's /usr, or the configured rootfs
	 * folder's (a debootstrap tree, an unpacked image). Such a tree
	 * holds no host secret, so its own /etc is used whole, read-only.
	 */
	snprintf(path, sizeof(path), "%s/usr", root);
	if ((size_t)snprintf(opt, sizeof(opt), "lowerdir=%s/usr,"
	    "upperdir=upper/usr,workdir=work", rootfs != NULL ? rootfs : "")
	    >= sizeof(opt) || strchr(rootfs != NULL ? rootfs : "", ',') !=
	    NULL)
		die("--rootfs %s: unusable path", rootfs);
	if (mount("overlay", path, "overlay", MS_NOSUID | MS_NODEV, opt) == -1)
		die("overlay on /usr (lower %s/usr): %s", rootfs != NULL ?
		    rootfs : "", strerror(errno));
	if (rootfs != NULL) {
		snprintf(path, sizeof(path), "%s/etc", rootfs);
		bind(path, root, "etc", true, false);
	} else
		build_etc(root);
	trust_egress_ca(root);
	snprintf(path, sizeof(path), "%s/proc", root);
	if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    NULL) == -1)
		die("proc: %s", strerror(errno));
	build_dev(root);
	snprintf(path, sizeof(path), "%s/tmp", root);
	snprintf(opt, sizeof(opt), "mode=1777,size=%ldm", tmp_mb);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opt) == -1)
		die("tmpfs /tmp: %s", strerror(errno));
	bind("workspace", root, "workspace", false, false);
	bind("data", root, "data", false, false);
	/*
	 * Read-only: the sandbox may connect to the gateway's sockets but
	 * not replace them with its own (the gateway would then talk to an
	 * impostor of pincer-init).
	 */
	bind("run", root, "run/pincer", true, false);
	/* pincer's own programs and files for the sandbox (pincer-agent,
	 * the bundled skills): read-only; a missing one is skipped. */
	if (ntools > 0) {
		mkpath(root, "opt", 0755);
		mkpath(root, "opt/pincer", 0755);
	}
	for (i = 0; i < ntools; i++) {
		snprintf(path, sizeof(path), "opt/pincer/%s",
		    strrchr(tools[i], '/') + 1);
		bind(tools[i], root, path, true, true);
	}

	/* pivot_root(".", "."), then detach the old root under it. */
	if (chdir(root) == -1 ||
	    syscall(SYS_pivot_root, ".", ".") == -1 ||
	    umount2(".", MNT_DETACH) == -1 || chdir("/") == -1)
		die("pivot_root: %s", strerror(errno));
	/* The skeleton itself is read-only; its mounts keep their modes. */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NODEV, NULL) == -1)
		die("read-only /: %s", strerror(errno));
}

static void
build_etc(const char *root)
{
	char	 src[PATH_MAX];
	size_t	 i;

	write_file(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
	    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
	write_file(root, "etc/group", "root:x:0:\nnogroup:x:65534:\n");
	write_file(root, "etc/hostname", "sandbox\n");
	write_file(root, "etc/hosts", "127.0.0.1\tlocalhost sandbox\n"
	    "::1\tlocalhost ip6-localhost\n");
	link_at(root, "etc/os-release", "../usr/lib/os-release");
	for (i = 0; etc_files[i] != NULL; i++) {
		snprintf(src, sizeof(src), "/etc/%s", etc_files[i]);
		bind(src, root, src + 1, true, true);
	}
}

/*
 * pincerd intercepts TLS to hosts its policy injects credentials for,
 * with a certificate from this sandbox's own CA (made for this run, its
 * key only in pincerd's memory). Programs trust it through the system
 * bundle: pincerd's run/ca-certificates.crt (the host's bundle plus the
 * CA) is mounted over /etc/ssl/certs/ca-certificates.crt, read-only. A
 * --rootfs tree without that file, or with a symbolic link on the way
 * (it would be followed outside root), is left as it is.
 */
static void
trust_egress_ca(const char *root)
{
	static const char *const path[] = { "etc/ssl", "etc/ssl/certs",
	    "etc/ssl/certs/ca-certificates.crt" };
	const char	*src = "run/ca-certificates.crt";
	char		 dst[PATH_MAX];
	struct stat	 st;
	size_t		 i;

	if (stat(src, &st) == -1 || !S_ISREG(st.st_mode))
		return;
	for (i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
		snprintf(dst, sizeof(dst), "%s/%s", root, path[i]);
		if (lstat(dst, &st) == -1 || (i + 1 < sizeof(path) /
		    sizeof(path[0]) ? !S_ISDIR(st.st_mode) :
		    !S_ISREG(st.st_mode)))
			return;
	}
	if (mount(src, dst, NULL, MS_BIND, NULL) == -1)
		die("bind %s: %s", src, strerror(errno));
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NODEV, NULL) == -1)
		die("read-only %s: %s", dst, strerror(errno));
}

static void
build_dev(const char *root)
{
	char	 path[PATH_MAX], src[64];
	size_t	 i;

	snprintf(path, sizeof(path), "%s/dev", root);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC,
	    "mode=0755,size=64k") == -1)
		die("tmpfs /dev: %s", strerror(errno));
	for (i = 0; dev_nodes[i] != NULL; i++) {
		snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
		bind(src, root, src + 1, false, false);
	}
	mkpath(root, "dev/pts", 0755);
	mkpath(root, "dev/shm", 01777);
	snprintf(path, sizeof(path), "%s/dev/pts", root);
	/* A private devpts: the host's terminals are not in it. */
	if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC,
	    "newinstance,ptmxmode=0666,mode=0620") == -1)
		die("devpts: %s", strerror(errno));
	link_at(root, "dev/ptmx", "pts/ptmx");
	link_at(root, "dev/fd", "/proc/self/fd");
	link_at(root, "dev/stdin", "/proc/self/fd/0");
	link_at(root, "dev/stdout", "/proc/self/fd/1");
	link_at(root, "dev/stderr", "/proc/self/fd/2");
	snprintf(path, sizeof(path), "%s/dev/shm", root);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "mode=1777,size=16m") == -1)
		die("tmpfs /dev/shm: %s", strerror(errno));
}

static void
mkpath(const char *root, const char *rel, mode_t mode)
{
	char	 path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (mkdir(path, mode) == -1 && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
	if (chmod(path, mode) == -1)
		die("chmod %s: %s", path, strerror(errno));
}

static void
link_at(const char *root, const char *rel, const char *target)
{
	char	 path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (symlink(target, path) == -1 && errno != EEXIST)
		die("symlink %s: %s", path, strerror(errno));
}

/*
 * Bind src at root/rel (a file or a folder, like src). Optional binds
 * skip a missing src; read-only ones are remounted so.
 */
static void
bind(const char *src, const char *root, const char *rel, bool ro,
    bool optional)
{
	char		 dst[PATH_MAX];
	struct stat	 st;
	int		 fd;

	if (stat(src, &st) == -1) {
		if (optional)
			return;
		die("%s: %s", src, strerror(errno));
	}
	snprintf(dst, sizeof(dst), "%s/%s", root, rel);
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, 0755) == -1 && errno != EEXIST)
			die("mkdir %s: %s", dst, strerror(errno));
	} else {
		if ((fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) ==
		    -1)
			die("create %s: %s", dst, strerror(errno));
		close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) == -1)
		die("bind %s: %s", src, strerror(errno));
	if (ro && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NODEV, NULL) == -1)
		die("read-only %s: %s", dst, strerror(errno));
	if (!ro && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID,
	    NULL) == -1)
		die("nosuid %s: %s", dst, strerror(errno));
}

static void
write_file(const char *root, const char *rel, const char *text)
{
	char	 path[PATH_MAX];
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || write(fd, text, strlen(text)) !=
	    (ssize_t)strlen(text))
		die("write %s: %s", path, strerror(errno));
	close(fd);
}
