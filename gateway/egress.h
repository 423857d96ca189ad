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

/* egress_conf.c: the policies, and which one each sandbox has */
struct config;
int	 egress_conf_load(const struct config *, char *err, size_t);
void	 egress_conf_free(void);
void	 egress_conf_check(const char *box, const struct eg_req *,
	    struct eg_verdict *, char *pname, size_t);

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
