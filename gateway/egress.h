/* SPDX-License-Identifier: MIT */
/*
 * egress.h: the egress proxy's own header (pincer.h holds what the rest
 * of pincerd uses): egress_policy.c decides, with no socket, whether one
 * outbound request or CONNECT tunnel from a sandbox may go out.
 */
#ifndef EGRESS_H
#define EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include <jansson.h>
#include <openssl/ssl.h>

/* egress_policy.c: the semantics are in its top comment. */

enum eg_action { EG_ALLOW, EG_DENY, EG_INJECT };

struct eg_policy;

struct eg_req {
	const char		*host;	/* as asked: any case, a trailing '.' */
	int			 port;
	const char		*method; /* "CONNECT" for a tunnel */
	const char		*path;	/* NULL for CONNECT (not known) */
	const struct sockaddr	*addr;	/* resolved, or NULL before that */
};

#define EG_RULE_DEFAULT	(-1)	/* no rule matched: the policy's default */
#define EG_RULE_SPECIAL	(-2)	/* refused as a private/special address */

struct eg_verdict {
	enum eg_action	 action;
	int		 rule;		/* index, or EG_RULE_DEFAULT/_SPECIAL */
	char		 reason[200];	/* deny: the words the agent reads */
	json_t		*set_headers;	/* borrowed from the policy; inject */
	json_t		*set_query;	/* borrowed; inject; or NULL */
};

/* NULL with err ("egress policy "NAME": rule 3: ...") when obj is wrong.
 * obj is only read; the policy keeps its own references. */
struct eg_policy *eg_policy_parse(const char *name, json_t *obj, char *err,
	    size_t errsz);
void	 eg_policy_free(struct eg_policy *);
/* With addr NULL (before resolving, to refuse early by host) only a
 * deny is final: check again with the address. */
void	 eg_policy_check(const struct eg_policy *, const struct eg_req *,
	    struct eg_verdict *);
/* True for a refused range; *range (if range is not NULL) names it in
 * CIDR form, e.g. "127.0.0.0/8". A NULL address is not special. */
bool	 eg_addr_special(const struct sockaddr *, const char **range);
/* Some rule has a cidr: the address is needed before deciding. */
bool	 eg_policy_needs_addr(const struct eg_policy *);
/* An inject rule could match a request to host:port inside a tunnel, and
 * no earlier unconditional rule decides first: the proxy must intercept
 * TLS and check each request in the tunnel instead of the CONNECT. */
bool	 eg_policy_intercepts(const struct eg_policy *, const char *host,
	    int port);
/* Some request to host:port could be allowed at addr (a tunnel whose
 * requests are checked one by one is opened to it); else v says why
 * not. v's set_headers and set_query are not filled. */
bool	 eg_policy_addr_ok(const struct eg_policy *, const char *host,
	    int port, const struct sockaddr *addr, struct eg_verdict *v);

/* egress.c and egress_tls.c: one connection from a sandbox */

struct buf;

#define EG_HEAD_MAX	(16 << 10)	/* a request head, proxy headers too */

struct econn {
	int			 fd;		/* the sandbox's side */
	int			 up;		/* the host's, or -1 */
	char			 box[64];	/* >= SBX_NAME_MAX + 1 */
	char			 policy[64];	/* the one that decided */
	struct sockaddr_storage	 upaddr;	/* where up goes */
	bool			 intercepted;	/* TLS ended in pincerd */
	struct econn		*prev, *next;
};

/* What one request asks for, parsed from its head. */
struct ereq {
	char		 method[16];
	char		 host[256];
	char		 port_s[8];
	int		 port;
	char		*path;		/* origin form, query included; owned */
	size_t		 head_len;	/* bytes of the head in buf */
	char		 buf[EG_HEAD_MAX + 1];
	size_t		 len;		/* bytes in buf */
};

/* How a request ended, for /metrics and the log. */
enum eg_outcome { EO_ALLOW, EO_DENY, EO_ERROR, EO_INJECT };

/* Resolve r->host, check each address, connect e->up to one allowed.
 * intercept: each request will be checked, so an address passes if some
 * request could be allowed there. 0, or the status already answered. */
int	 egress_dial(struct econn *, struct ereq *, struct eg_verdict *,
	    bool intercept, char *why, size_t whysz);
/* A plain request to the host: origin form, the sandbox's headers but
 * the hop-by-hop ones, "Connection: close"; what body was read. */
int	 egress_send_head(struct econn *, struct ereq *, long long *up);
/* Bytes both ways until both ends are done or idle; *status (if not
 * NULL) the host's, read from its answer. */
void	 egress_relay(struct econn *, long long *up, long long *down,
	    int *status);
int	 egress_write_all(int fd, const void *, size_t);
/* A refusal's whole answer (head and JSON body) into out. */
int	 egress_answer(struct buf *out, const struct econn *, int status,
	    const char *code, const char *msg, int rule);
void	 egress_refuse(struct econn *, int status, const char *code,
	    const char *msg, const struct eg_verdict *);
/* Counted in /metrics and logged: one request, or one tunnel. */
void	 egress_account(const struct econn *, const struct ereq *,
	    enum eg_outcome, int rule, int status, long long up,
	    long long down, uint64_t ms);

/* egress_http.c: HTTP/1.1 heads in an intercepted tunnel. A head is the
 * bytes up to and including its blank line. */
enum eg_framing { EF_NONE, EF_LEN, EF_CHUNKED, EF_CLOSE };
const char *eh_header(const char *head, size_t len, const char *name,
	    size_t *vlen);
bool	 eh_has_token(const char *head, size_t len, const char *name,
	    const char *token);
int	 eh_framing(const char *head, size_t len, bool request,
	    long long *n);
int	 eh_request_line(const char *head, size_t len, char *method,
	    size_t msz, char **path);
int	 eh_status(const char *head, size_t len);
int	 eh_rewrite(struct buf *out, const char *head, size_t len,
	    const char *method, const char *path, const json_t *set_headers,
	    const json_t *set_query, char *why, size_t whysz);

/* egress_sni.c: the host a ClientHello names (into name): 1; 0 none;
 * -1 not a ClientHello in one record; -2 more bytes needed. */
int	 eg_sni(const unsigned char *, size_t, char *name, size_t namesz);

/* egress_tls.c: a CONNECT whose requests are checked one by one (an
 * inject rule may match them): TLS ended with the sandbox's CA, the host
 * verified, each request decided, credentials set on the way out. */
void	 egress_tls_run(struct econn *, struct ereq *);
void	 egress_tls_free(void);

/* egress_tio.c: an intercepted tunnel's I/O. Each wait is a poll of at
 * most ms; -1 is an error or a timeout. */
#define EG_IO_BUF	(64 << 10)	/* per side */

/* One end of the tunnel, with what was read and not yet passed on. */
struct side {
	SSL		*ssl;		/* NULL: before TLS (plain writes) */
	int		 fd;
	char		*buf;		/* EG_IO_BUF + 1 */
	size_t		 off, len;	/* unread: buf[off, len) */
};

struct tunnel {
	struct econn	*e;
	struct ereq	*r;		/* the CONNECT */
	struct side	 dn, up;	/* the sandbox's, the host's */
	int		 idle_ms;
	long long	 bup, bdown;	/* this request's bytes */
};

/* Wait for what the last TLS call (its return rc) needs. */
int	 eg_io_wait(struct side *, int rc, int ms);
/* Up to n bytes: >0, 0 at the end, -1, or -2 none yet (wait false). */
long	 eg_side_read(struct side *, void *, size_t n, bool wait, int ms);
/* More into buf, moved to its start: >0, 0 at the end, -1. */
int	 eg_side_fill(struct side *, int ms);
int	 eg_side_write(struct side *, const void *, size_t, int ms);
/* A whole head at buf + off: 0 (*hlen), -1 end or error, -2 too large. */
int	 eg_read_head(struct side *, int ms, size_t *hlen);
/* A body framed as how (enum eg_framing, n for EF_LEN), passed on;
 * *count grows by the bytes. */
int	 eg_copy_body(struct tunnel *, struct side *from, struct side *to,
	    int how, long long n, long long *count);
/* After a 101: both ways until one side ends or idles out. */
void	 eg_both_ways(struct tunnel *);

/* egress_conf.c: the policies, and which one each sandbox has */
struct config;
int	 egress_conf_load(const struct config *, char *err, size_t);
void	 egress_conf_free(void);
void	 egress_conf_check(const char *box, const struct eg_req *,
	    struct eg_verdict *, char *pname, size_t);
/* The box's policy wants this tunnel's requests checked one by one. */
bool	 egress_conf_intercepts(const char *box, const char *host, int port);
/* Some request to host:port at addr could be allowed (for a tunnel whose
 * requests are checked one by one); else v says why not. */
bool	 egress_conf_addr_ok(const char *box, const char *host, int port,
	    const struct sockaddr *addr, struct eg_verdict *v, char *pname,
	    size_t);

/* egress_log.c: each request in the store, for GET /api/v1/egress/log */
struct eg_logrec {
	int64_t		 ts_ms;		/* wall clock, ms */
	const char	*sandbox, *policy, *method, *host;
	int		 port;
	const char	*path;		/* origin form; NULL for CONNECT; the
					 * query is cut here */
	const char	*action;	/* "allow", "deny", "error" */
	int		 rule, status;
	long long	 bytes_up, bytes_down, ms;
	bool		 intercepted;
};
/* Any thread: queued in memory, never waiting on the store. */
void	 egress_log_add(const struct eg_logrec *);

/* egress_ca.c: each running sandbox's own CA, for intercepted TLS */
#define EGRESS_CA_MAX_LEAVES	256	/* cached hosts per sandbox */
/* A new CA for box's run (replacing one it had): writes rundir/egress-ca.pem
 * (the CA certificate) and rundir/ca-certificates.crt (the system bundle
 * /etc/ssl/certs/ca-certificates.crt followed by the CA), mode 0644.
 * -1 with err. */
int	 egress_ca_issue(const char *box, const char *rundir, char *err,
	    size_t errsz);
/* The box's CA is gone (stopped, destroyed); its leaves too. */
void	 egress_ca_forget(const char *box);
/* A server SSL_CTX presenting a leaf for host (a DNS name, or an IP
 * literal: an IP SAN) signed by box's CA, chain leaf+CA, ALPN "http/1.1"
 * only, TLS >= 1.2. Cached per (box, host), at most EGRESS_CA_MAX_LEAVES
 * hosts per box (the least recently used go). The caller owns one
 * reference: SSL_CTX_free when done. NULL with err when box has no CA
 * (not running) or minting failed. */
SSL_CTX	*egress_ca_server_ctx(const char *box, const char *host, char *err,
	    size_t errsz);
/* Frees everything (at pincerd exit). */
void	 egress_ca_shutdown(void);
/* For the tests: how many leaves box has cached (0 without a CA). */
size_t	 egress_ca_cached(const char *box);

/* egress_cert.c: the certificates egress_ca.c keeps (no state of its own) */
#define EGRESS_HOST_MAX	253	/* a DNS name's longest text */
struct eg_signer {
	X509		*ca;		/* the CA's certificate */
	EVP_PKEY	*ca_key;
	EVP_PKEY	*leaf_key;	/* every leaf's */
};
/* box's CA certificate, self-signed with key; NULL with err. */
X509	*egress_cert_ca(const char *box, EVP_PKEY *key, time_t expires,
	    char *err, size_t errsz);
/* A server SSL_CTX for host (its reference the caller's), with a new
 * leaf valid until expires; NULL with err. */
SSL_CTX	*egress_cert_server(const struct eg_signer *, const char *host,
	    bool ip, time_t expires, char *err, size_t errsz);
/* host as a leaf names it: a canonical IP literal (*ip set), or a DNS
 * name in lower case without its trailing dot; -1 for anything else,
 * a wildcard included. */
int	 egress_cert_host(const char *in, char *out, size_t outsz, bool *ip);

#endif
