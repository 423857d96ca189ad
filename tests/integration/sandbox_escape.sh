# SPDX-License-Identifier: MIT
# pincer-sandbox: each escape attempt runs inside a sandbox and must fail.
. "$TOP_SRCDIR/tests/integration/lib.sh"

SBX="$TOP_BUILDDIR/pincer-sandbox"
A="$T_TMP/sandboxes/a"
B="$T_TMP/sandboxes/b"
mkdir -p "$T_TMP/sandboxes"
chmod 700 "$T_TMP/sandboxes"	# like $state: the sandboxes may not search it
sb() { local d=$1; shift; "$SBX" --dir "$d" -- /bin/sh -c "$*" 2>&1; }

if ! "$SBX" --dir "$A" -- true 2>"$T_TMP/err"; then
	echo "1..0 # SKIP namespaces unavailable here: $(cat "$T_TMP/err")"
	exit 0
fi

is "the command's exit code comes back" "$(sb "$A" 'exit 7' >/dev/null; echo $?)" 7
"$SBX" --dir "$A" --status-fd 9 -- /bin/sh -c 'exit 3' 9>"$T_TMP/status" >/dev/null 2>&1
like "--status-fd: started, with the pid" "$(head -1 "$T_TMP/status")" '^\{"event":"started","pid":[0-9]+\}$'
is "--status-fd: exited, with the code" "$(tail -1 "$T_TMP/status")" '{"event":"exited","code":3}'
R=$("$SBX" --dir relative/path -- true 2>&1; echo "rc=$?")
like "a relative --dir is refused with the usage" "$R" '^usage: pincer-sandbox'
like "and exit code 125" "$R" '^rc=125$'

is "inside, the user is root (of the sandbox)" "$(sb "$A" 'id -u')" 0
like "the hostname is the sandbox's" "$(sb "$A" hostname)" '^sandbox$'
is "/etc/shadow does not exist inside" "$(sb "$A" 'test -e /etc/shadow || echo absent')" absent
unlike "no host account is in /etc/passwd" "$(sb "$A" 'cat /etc/passwd')" \
    "^$(id -un 2>/dev/null || echo nobody-here):x:[1-9]"
is "no ssh keys (/etc/ssh absent)" "$(sb "$A" 'test -e /etc/ssh || echo absent')" absent
is "the host's state and build folders are not there" \
    "$(sb "$A" "test -e '$TOP_BUILDDIR' || test -e '$T_TMP' || echo absent")" absent
like "no host process is visible in /proc" \
    "$(sb "$A" "test -e /proc/$$ && echo seen; ls /proc | grep -c '^[0-9]'")" '^[0-9]$'
like "the only network interface is lo" "$(sb "$A" "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")" '^lo$'

# A TCP port on the host's 127.0.0.1 is out of reach.
pincer_start '{}' || { echo "Bail out! pincerd did not start"; exit 1; }
PORT=${PINCER_ADDR##*:}
is "the host port answers from the host" "$(curl -s -o /dev/null -w '%{http_code}' "$PINCER_URL/healthz")" 200
like "a host TCP port on 127.0.0.1 cannot be reached" \
    "$("$SBX" --dir "$A" -- /bin/bash -c "(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && echo reached; echo rc=\$?" 2>&1)" \
    '^rc=1$'
pincer_stop

caps=$(sb "$A" 'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb)" /proc/self/status')
is "every capability set is empty" "$(printf '%s\n' "$caps" | grep -vc ':	0000000000000000$')" 0
like "no new privileges" "$(sb "$A" 'grep NoNewPrivs /proc/self/status')" ':	1$'
like "a seccomp filter is loaded" "$(sb "$A" 'grep ^Seccomp: /proc/self/status')" ':	2$'
is "only 0, 1 and 2 are open (and ls's own)" "$(exec 7>/dev/null; sb "$A" 'ls /proc/self/fd | wc -l')" 4
like "PID 1 is the sandbox's reaper, the command is a child" "$(sb "$A" 'echo $$; cat /proc/1/comm')" '^2'

like "mount is refused" "$(sb "$A" 'mount -t tmpfs x /tmp 2>/dev/null; echo rc=$?')" 'rc=(32|1)$'
like "unshare of a user namespace is refused" "$(sb "$A" 'unshare -U true 2>&1 | tr "\n" " "')" \
    'Operation not permitted'
like "ptrace is refused" "$(sb "$A" 'perl -e '"'"'require "syscall.ph"; syscall(&SYS_ptrace, 16, 1, 0, 0) == -1 and print "$!\n"'"'"'')" \
    'Operation not permitted'
like "TIOCSTI is refused by the filter (EPERM, not ENOTTY)" \
    "$(sb "$A" 'perl -e '"'"'my $c = "x"; ioctl(STDIN, 0x5412, $c) or print "$!\n"'"'"'')" \
    'Operation not permitted'
like "netlink sockets are refused" \
    "$(sb "$A" 'perl -e '"'"'use Socket; socket(my $s, 16, SOCK_RAW, 0) or print "$!\n"'"'"'')" \
    'Address family not supported'
like "IPv6 sockets are allowed (loopback)" \
    "$(sb "$A" 'perl -e '"'"'use Socket; socket(my $s, AF_INET6, SOCK_STREAM, 0) and print "ok\n"'"'"'')" '^ok$'
like "the host's /usr cannot be written" "$(sb "$A" 'echo x 2>/dev/null > /usr/bin/pincer-escape; echo rc=$?')" 'rc=[12]$'
ok "and nothing landed on the host's /usr" test ! -e /usr/bin/pincer-escape

# /workspace persists; another sandbox sees none of it.
sb "$A" 'echo secret-a > /workspace/note' >/dev/null
is "/workspace persists across runs" "$(sb "$A" 'cat /workspace/note')" secret-a
is "sandbox B does not see A's workspace" "$(sb "$B" 'test -e /workspace/note || echo absent')" absent
is "nor A's folder by its host path" "$(sb "$B" "test -e '$A' || echo absent")" absent
if [ "$(id -u)" = 0 ]; then
	is "a file made in /workspace belongs to the unprivileged host uid" \
	    "$(stat -c %u "$A/workspace/note")" 100000
fi

# Limits (cgroups; they need root).
if [ "$(id -u)" = 0 ]; then
	n=$("$SBX" --dir "$A" --pids-max 32 -- perl -e 'my $n = 0;
	    for (1 .. 200) { my $p = fork; last unless defined $p;
	    if ($p == 0) { sleep 2; exit } $n++ } print "$n\n"' 2>/dev/null)
	ok "pids.max 32 stops forks short of 32 ($n made)" test "${n:-99}" -lt 32
	(timeout -s KILL 3 "$SBX" --dir "$A" --pids-max 64 -- \
	    perl -e 'fork while 1' >/dev/null 2>&1) 2>/dev/null
	ok "a fork bomb ends with its launcher, nothing left" \
	    wait_until 5 sh -c '! pgrep -u 100000 perl'
	is "the host still forks" "$(sh -c 'echo alive')" alive
	"$SBX" --dir "$A" --memory-mb 64 -- perl -e '$x = "x" x (300 << 20);
	    print "survived\n"' >"$T_TMP/oom" 2>&1
	is "a memory bomb over memory-mb 64 is killed (exit 137)" "$?" 137
	unlike "it did not survive" "$(cat "$T_TMP/oom")" survived
	is "another sandbox still runs" "$(sb "$B" 'echo fine')" fine
	ok "the cgroups are removed after" test ! -e /sys/fs/cgroup/pids/pincer/a
	# A busy loop under a 20% quota gets about 20 ms of CPU per 100 ms.
	"$SBX" --dir "$A" --cpu-quota 20 -- perl -e 'my $t = time + 1;
	    1 while time < $t; my @c = times; printf "%d\n", ($c[0] + $c[1]) * 1000' \
	    >"$T_TMP/cpu" 2>&1
	cpu_ms=$(cat "$T_TMP/cpu")
	ok "--cpu-quota 20: a second of busy loop got at most ~20% of a core ($cpu_ms ms)" \
	    test "${cpu_ms:-9999}" -le 400
	"$SBX" --dir "$A" --cpu-quota 20 -- sleep 2 &
	qpid=$!
	wait_until 5 sh -c 'cat /sys/fs/cgroup/cpu/pincer/a/cpu.cfs_quota_us \
	    /sys/fs/cgroup/pincer/a/cpu.max 2>/dev/null | grep -q 20000'
	like "while it runs, its group's quota is 20 ms per 100 ms" \
	    "$(cat /sys/fs/cgroup/cpu/pincer/a/cpu.cfs_quota_us \
	    /sys/fs/cgroup/pincer/a/cpu.max 2>/dev/null)" '^20000( 100000)?$'
	wait "$qpid"
	q=$(cat /sys/fs/cgroup/cpu/pincer/a/cpu.cfs_quota_us 2>/dev/null ||
	    cat /sys/fs/cgroup/pincer/a/cpu.max 2>/dev/null)
	is "… and the group is gone after (no quota file left)" "${q:-gone}" gone
else
	skip "cgroup limits" "not root"
fi

# As root in a user namespace that maps only uid 0 (rootless Docker or
# Podman), the launcher maps its own uid, as a normal user's does.
if unshare --user --map-root-user true 2>/dev/null; then
	OUT=$(unshare --user --map-root-user "$SBX" --dir "$T_TMP/sandboxes/rl" \
	    -- /bin/sh -c 'id -u; echo x >/workspace/f' 2>&1)
	is "root with one uid mapped: the sandbox starts, its root is uid 0" "$OUT" 0
	is "… and its files belong to the caller" \
	    "$(stat -c %u "$T_TMP/sandboxes/rl/workspace/f")" "$(id -u)"
else
	skip "rootless fallback" "unshare --map-root-user is not allowed here"
fi

# A configured rootfs folder instead of the host's /usr and /etc: a tree
# with dash and cat (and their libraries) alone.
R=$(mktemp -d /tmp/pincer-rootfs.XXXXXX)
make_rootfs "$R"
echo "from the rootfs" >"$R/etc/marker"
OUT=$("$SBX" --dir "$T_TMP/sandboxes/r" --rootfs "$R" -- /usr/bin/dash -c \
    'cat /etc/marker; echo /usr/bin/*; test -e /etc/passwd || echo nopasswd' 2>&1)
is "--rootfs: its /etc, its /usr, nothing of the host's" "$OUT" \
    "from the rootfs
/usr/bin/cat /usr/bin/dash
nopasswd"
"$SBX" --dir "$T_TMP/sandboxes/r" --rootfs "$R" -- /usr/bin/dash -c \
    'echo new >/usr/added' 2>/dev/null
ok "… writes land in the sandbox's upper layer, not in the rootfs" \
    test ! -e "$R/usr/added" -a -e "$T_TMP/sandboxes/r/upper/usr/added"
"$SBX" --dir "$T_TMP/sandboxes/r" --rootfs relative -- /usr/bin/dash \
    -c true >/dev/null 2>&1
is "… a relative --rootfs is refused (usage, 125)" "$?" 125
rm -rf "$R"

# The sandbox dies with its launcher (parent-death signal).
"$SBX" --dir "$A" -- sleep 31337 >/dev/null 2>&1 &
L=$!
ok "the sandboxed sleep runs" wait_until 5 pgrep -f '^sleep 31337$'
kill -KILL "$L"
wait "$L" 2>/dev/null
ok "killing the launcher kills the sandbox" wait_until 5 sh -c '! pgrep -f "^sleep 31337$"'

done_testing
