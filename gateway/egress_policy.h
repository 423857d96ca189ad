/* SPDX-License-Identifier: MIT */
/*
 * egress_policy.h: a parsed egress policy as egress_policy.c builds it
 * and egress_match.c reads it; private to those two (egress.h is for
 * the rest of the proxy).
 */
#ifndef EGRESS_POLICY_H
#define EGRESS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "egress.h"

enum host_kind { H_NONE, H_ANY, H_EXACT, H_SUFFIX };

struct cidr {
	int		 family;	/* AF_INET, AF_INET6; 0: none */
	unsigned char	 net[16];	/* bits past the prefix are zero */
	int		 bits;
};

struct rule {
	enum host_kind	 hkind;
	char		*host;		/* owned, lower-case; "*.a" as ".a" */
	size_t		 hostlen;
	int		*ports;		/* owned */
	size_t		 nports;
	struct cidr	*cidrs;		/* owned */
	size_t		 ncidrs;
	char		**methods;	/* owned, each owned */
	size_t		 nmethods;
	char		*path_prefix;	/* owned, or NULL */
	enum eg_action	 action;
	char		*reason;	/* owned, or NULL */
	json_t		*set_headers;	/* a reference, or NULL */
	json_t		*set_query;	/* a reference, or NULL */
};

struct eg_policy {
	char		*name;		/* owned */
	enum eg_action	 dflt;
	struct rule	*rules;		/* owned */
	size_t		 nrules;
	bool		 needs_addr;
};

/* egress_match.c: shared so that parsing judges a path_prefix's dot
 * segments, and a header name's case, exactly as matching does. */
bool	 eg_dot_segment(const char *);
bool	 eg_ieq(const char *, const char *, size_t);

#endif
