/* SPDX-License-Identifier: MIT */
/*
 * egress_browser.c: the way out of a sandbox's browser context. A local
 * Chromium runs on the host, so the pages a sandbox opens would be
 * fetched from the host's network, outside the sandbox's egress policy.
 * Each sandbox's context is given a proxy of its own instead
 * (Target.createBrowserContext's proxyServer): a socket listening on
 * 127.0.0.1, whose connections egress.c serves as that sandbox.
 *
 * One thread accepts on all of them. A listener is closed by that
 * thread alone, never while it may be in its poll.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pincer.h"

#define BACKLOG		64
#define SCAN_GAP_MS	1000	/* a refused peer's pid: once a second */
#define KEPT_MAX	256	/* Chromium's processes remembered */

/* A sandbox's proxy port. */
struct blis {
	int		 fd;
	int		 port;
	bool		 gone;		/* forgotten: the thread closes it */
	char		 box[SBX_NAME_MAX + 1];
	struct blis	*next;
};

static void	*accepter(void *);
static int	 listen_lo(int *);
static void	 wake(void);
static struct pollfd *poll_set(struct pollfd *, size_t *);
static void	 accept_all(int);
static void	 serve(int, const struct sockaddr_in *, int, const char *);
static unsigned long peer_inode(const struct sockaddr_in *, int);
static pid_t	 sock_owner(unsigned long, pid_t);
static pid_t	 pgrp_of(pid_t);
static bool	 has_fd(pid_t, const char *);

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static struct blis	*lis;		/* mu */
static bool		 running;	/* mu: the thread was started */
static bool		 quit;		/* mu */
static int		 wake_fd = -1;	/* mu to make */
static pthread_t	 thread;
static bool		 remote_said;	/* ws.c's service thread */
/* The accepting thread's: */
static uint64_t		 last_scan;
static pid_t		 kept[KEPT_MAX];	/* kept_group's, last seen */
static size_t		 nkept;
static pid_t		 kept_group;

/*
 * The port of box's proxy, listening from the first call on: the
 * browser context is told it when it is made, and keeps it.
 */
int
egress_browser_port(const char *box, char *err, size_t errsz)
{
	struct logline	 ll;
	struct blis	*l;
	int		 port = -1, fd;
	bool		 made = false;

	pthread_mutex_lock(&mu);
	for (l = lis; l != NULL; l = l->next)
		if (!l->gone && !strcmp(l->box, box)) {
			port = l->port;
			goto out;
		}
	if (quit) {
		snprintf(err, errsz, "pincerd is stopping");
		goto out;
	}
	if (wake_fd == -1 && (wake_fd = eventfd(0, EFD_NONBLOCK |
	    EFD_CLOEXEC)) == -1) {
		snprintf(err, errsz, "eventfd: %s", strerror(errno));
		goto out;
	}
	if (!running && pthread_create(&thread, NULL, accepter, NULL) != 0) {
		snprintf(err, errsz, "cannot start the browser proxy's thread");
		goto out;
	}
	running = true;
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (fd = listen_lo(&l->port)) == -1) {
		snprintf(err, errsz, "cannot listen on 127.0.0.1 for the "
		    "browser's proxy: %s", strerror(errno));
		free(l);
		goto out;
	}
	l->fd = fd;
	snprintf(l->box, sizeof(l->box), "%s", box);
	l->next = lis;
	lis = l;
	port = l->port;
	made = true;
	wake();
out:
	pthread_mutex_unlock(&mu);
	if (made && log_begin(&ll, LOG_INFO, "browser context proxied")) {
		log_str(&ll, "sandbox", box);
		log_int(&ll, "port", port);
		log_end(&ll);
	}
	return port;
}

/*
 * The proxyServer for box's browser context into out: its port on a
 * local Chromium; "" for a remote browser, which cannot reach our
 * loopback (its traffic is its network's, said once in the log).
 */
int
egress_browser_proxy(const char *box, char *out, size_t outsz, char *err,
    size_t errsz)
{
	int	 port;

	*out = '\0';
	if (browser_backend(config_current()) != BROWSER_LOCAL) {
		if (!remote_said)
			log_warn("a remote browser's traffic is outside "
			    "egress policies", "its pages are fetched from "
			    "the remote browser's network");
		remote_said = true;
		return 0;
	}
	if ((port = egress_browser_port(box, err, errsz)) == -1)
		return -1;
	snprintf(out, outsz, "http://127.0.0.1:%d", port);
	return 0;
}

/*
 * Does a proxy setting (Chromium's proxy rules: "[SCHEME=][PROXY://]
 * HOST[:PORT]", several with ';') name a port of ours? Every ":N" in it
 * is taken as a port, whatever host it follows: loopback has too many
 * spellings to tell by the host.
 */
bool
egress_browser_named(const char *rules)
{
	struct blis	*l;
	const char	*s;
	char		*end;
	long		 port;
	bool		 yes = false;

	if (rules == NULL)
		return false;
	pthread_mutex_lock(&mu);
	for (s = strchr(rules, ':'); s != NULL && !yes; s = strchr(s + 1,
	    ':')) {
		port = strtol(s + 1, &end, 10);
		if (end == s + 1 || port <= 0 || port > 65535)
			continue;
		for (l = lis; l != NULL && !yes; l = l->next)
			yes = l->port == port;
	}
	pthread_mutex_unlock(&mu);
	return yes;
}

/* box's context is gone: so is its proxy. */
void
egress_browser_forget(const char *box)
{
	struct blis	*l;

	pthread_mutex_lock(&mu);
	for (l = lis; l != NULL; l = l->next)
		if (!l->gone && !strcmp(l->box, box)) {
			l->gone = true;
			wake();
		}
	pthread_mutex_unlock(&mu);
}

/* Every listener closed; none is made after. */
void
egress_browser_stop(void)
{
	struct blis	*l;
	bool		 join;

	pthread_mutex_lock(&mu);
	quit = true;
	join = running;
	if (wake_fd != -1)
		wake();
	pthread_mutex_unlock(&mu);
	if (join)
		pthread_join(thread, NULL);
	pthread_mutex_lock(&mu);
	while ((l = lis) != NULL) {
		lis = l->next;
		close(l->fd);
		free(l);
	}
	if (wake_fd != -1)
		close(wake_fd);
	wake_fd = -1;
	running = false;
	pthread_mutex_unlock(&mu);
}

static void *
accepter(void *unused)
{
	struct pollfd	*pfd = NULL;
	size_t		 n, i;
	uint64_t	 v;
	ssize_t		 r;

	(void)unused;
	for (;;) {
		pthread_mutex_lock(&mu);
		if (quit) {
			pthread_mutex_unlock(&mu);
			break;
		}
		pfd = poll_set(pfd, &n);
		pthread_mutex_unlock(&mu);
		if (pfd == NULL || poll(pfd, (nfds_t)n, -1) == -1) {
			if (pfd == NULL || errno != EINTR)
				usleep(100000);
			continue;
		}
		if (pfd[0].revents != 0)
			r = read(pfd[0].fd, &v, sizeof(v)), (void)r;
		/* Listeners close only here: each fd is still ours. */
		for (i = 1; i < n; i++)
			if (pfd[i].revents != 0)
				accept_all(pfd[i].fd);
	}
	free(pfd);
	return NULL;
}

/* Under mu: the forgotten closed, the rest to poll (the wake first). */
static struct pollfd *
poll_set(struct pollfd *pfd, size_t *n)
{
	struct blis	**lp, *l;
	struct pollfd	*p;
	size_t		 k = 1;

	for (lp = &lis; (l = *lp) != NULL; )
		if (l->gone) {
			*lp = l->next;
			close(l->fd);
			free(l);
		} else {
			lp = &l->next;
			k++;
		}
	if ((p = reallocarray(pfd, k, sizeof(*p))) == NULL) {
		free(pfd);
		return NULL;
	}
	p[0] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
	for (k = 1, l = lis; l != NULL; l = l->next, k++)
		p[k] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
	*n = k;
	return p;
}

static void
accept_all(int lfd)
{
	struct sockaddr_in	 peer;
	socklen_t		 len;
	struct blis		*l;
	char			 box[SBX_NAME_MAX + 1] = "";
	int			 fd, port = 0;

	pthread_mutex_lock(&mu);
	for (l = lis; l != NULL; l = l->next)
		if (l->fd == lfd && !l->gone) {
			snprintf(box, sizeof(box), "%s", l->box);
			port = l->port;
		}
	pthread_mutex_unlock(&mu);
	if (*box == '\0')
		return;
	for (;;) {
		len = sizeof(peer);
		fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
		if (fd == -1 && errno == EINTR)
			continue;
		if (fd == -1)
			return;
		if (len != sizeof(peer) || peer.sin_family != AF_INET)
			close(fd);
		else
			serve(fd, &peer, port, box);
	}
}

/*
 * Any local process could connect to a sandbox's port and be served as
 * that sandbox: its allow-list, and the credentials its inject rules
 * add. So a connection is served only when the socket at its other end
 * is held by a process of the Chromium pincerd started (its network
 * service is a child in its process group): the peer's socket inode
 * from /proc/net/tcp, found among that group's open fds. Anything else
 * is closed unanswered, and logged with the pid holding it if it is
 * found (looked for at most once a second: a flood of connections
 * must not keep this thread scanning /proc).
 */
static void
serve(int fd, const struct sockaddr_in *peer, int port, const char *box)
{
	struct logline	 l;
	unsigned long	 ino = peer_inode(peer, port);
	pid_t		 group = browser_local_pid(), pid = -1;

	if (ino != 0 && group > 0 && sock_owner(ino, group) > 0) {
		/* The door counts what egress.c ends: it does so here. */
		if (door_conn_opened() == -1)
			close(fd);
		else if (egress_adopt(fd, box) == -1) {
			close(fd);
			door_conn_closed();
		}
		return;
	}
	/* Before the close: the peer may end with it. */
	if (ino != 0 && now_ms() - last_scan >= SCAN_GAP_MS) {
		last_scan = now_ms();
		pid = sock_owner(ino, 0);
	}
	close(fd);
	if (log_begin(&l, LOG_WARN, "browser proxy connection refused")) {
		log_str(&l, "sandbox", box);
		log_int(&l, "port", port);
		log_int(&l, "peer_port", ntohs(peer->sin_port));
		log_int(&l, "peer_pid", pid);
		log_str(&l, "why", "not from the Chromium pincerd started");
		log_end(&l);
	}
}

/*
 * The inode of the peer's socket: the row of /proc/net/tcp whose local
 * address is the peer and whose remote one is our port. The kernel
 * prints an address as the 32-bit word it holds in network order, and
 * a port in host order. 0: not found.
 */
static unsigned long
peer_inode(const struct sockaddr_in *peer, int port)
{
	char		 line[512];
	unsigned int	 la, lp, ra, rp;
	unsigned long	 ino, found = 0;
	FILE		*f;

	if ((f = fopen("/proc/net/tcp", "re")) == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%*s %x:%x %x:%x %*s %*s %*s %*s %*s %*s %lu",
		    &la, &lp, &ra, &rp, &ino) != 5)
			continue;
		if (la == peer->sin_addr.s_addr &&
		    lp == ntohs(peer->sin_port) &&
		    ra == htonl(INADDR_LOOPBACK) && rp == (unsigned)port)
			found = ino;
	}
	fclose(f);
	return found;
}

/*
 * The pid of a process of group (0: any) that holds socket inode ino;
 * -1 if none does. Chromium's processes are kept from the last scan of
 * /proc and asked first: a page opens many connections, and a host
 * may run many processes. A pid kept is asked again for its group, in
 * case it ended and its number went to another process.
 */
static pid_t
sock_owner(unsigned long ino, pid_t group)
{
	char		 want[48];
	struct dirent	*de;
	DIR		*d;
	char		*end;
	pid_t		 pid, found = -1;
	size_t		 i;

	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	/* The one that held the last (the network service) goes first. */
	for (i = 0; group > 0 && group == kept_group && i < nkept; i++)
		if (pgrp_of(kept[i]) == group && has_fd(kept[i], want)) {
			pid = kept[i];
			kept[i] = kept[0];
			kept[0] = pid;
			return pid;
		}
	if ((d = opendir("/proc")) == NULL)
		return -1;
	if (group > 0) {
		kept_group = group;
		nkept = 0;
	}
	while ((de = readdir(d)) != NULL) {
		pid = (pid_t)strtol(de->d_name, &end, 10);
		if (pid <= 0 || *end != '\0' ||
		    (group > 0 && pgrp_of(pid) != group))
			continue;
		if (group > 0 && nkept < KEPT_MAX)
			kept[nkept++] = pid;
		if (found == -1 && has_fd(pid, want)) {
			found = pid;
			if (group <= 0)
				break;
		}
	}
	closedir(d);
	return found;
}

/* pid's process group; -1 if it is gone. */
static pid_t
pgrp_of(pid_t pid)
{
	char	 path[64], buf[512], *p;
	FILE	*f;
	int	 pgrp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* The name may hold anything: read after its ')'. */
	if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %d", &pgrp) != 1)
		return -1;
	return (pid_t)pgrp;
}

/* Does one of pid's open fds read want ("socket:[INODE]")? */
static bool
has_fd(pid_t pid, const char *want)
{
	char		 dir[64], path[320], link[64];
	struct dirent	*de;
	DIR		*d;
	ssize_t		 n;
	bool		 yes = false;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((d = opendir(dir)) == NULL)
		return false;
	while (!yes && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		yes = n > 0 && (size_t)n == strlen(want) &&
		    !memcmp(link, want, (size_t)n);
	}
	closedir(d);
	return yes;
}

/* A socket on 127.0.0.1, port chosen by the kernel, listening. */
static int
listen_lo(int *port)
{
	struct sockaddr_in	 a = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t		 len = sizeof(a);
	int			 fd, e;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(fd, BACKLOG) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Under mu: the thread looks at the listeners again. */
static void
wake(void)
{
	uint64_t	 one = 1;
	ssize_t		 w;

	w = write(wake_fd, &one, sizeof(one));
	(void)w;
}
