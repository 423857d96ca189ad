/* SPDX-License-Identifier: MIT */
/* sandbox.h: pincer-sandbox's one internal header, a section per file. */
#ifndef SANDBOX_H
#define SANDBOX_H

/* sandbox.c */
void	die(const char *, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* rootfs.c */
void	rootfs_build(long tmp_mb);

/* seccomp.c */
void	seccomp_install(void);

#endif
