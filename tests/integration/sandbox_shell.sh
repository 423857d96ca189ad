# SPDX-License-Identifier: MIT
# sandbox_shell.sh: `pincer sandbox shell NAME` through a running pincerd, in
# pipe mode (no tty): stdin goes to the sandbox's shell, its output comes
# back, and the command exits with the shell's exit code.
. "$TOP_SRCDIR/tests/integration/lib.sh"

# shell INPUT ARGS...: INPUT (printf %b) is stdin; OUT, ERR, RC.
shell() {
	local input=$1
	shift
	printf '%b' "$input" | timeout 60 "$PINCER_BIN" --config "$PINCER_CONF" \
	    --state "$PINCER_STATE_DIR" sandbox shell "$@" \
	    >"$T_TMP/out" 2>"$T_TMP/err"
	RC=${PIPESTATUS[1]}
	# The PTY's CRs and bash's escape sequences (bracketed paste) out.
	OUT=$(sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$T_TMP/out" | tr -d '\r')
	ERR=$(cat "$T_TMP/err")
}

pincer_start '{}' || { echo "Bail out! pincerd did not start"; exit 1; }
if ! pcli sandbox create sh1 >"$T_TMP/create" 2>&1; then
	if grep -q 'cannot run on this host' "$T_TMP/create"; then
		echo "1..0 # SKIP $(cat "$T_TMP/create")"
		exit 0
	fi
	diag "$(cat "$T_TMP/create")"
	_t_result 1 "pincer sandbox create sh1"
	done_testing
fi

shell 'echo hi; exit 3\n' sh1
is "echo 'echo hi; exit 3' | pincer sandbox shell: exits 3" "$RC" 3
like "it prints hi on a line of its own" "$OUT" '^hi$'
is "nothing on stderr" "$ERR" ""

shell 'exit 2\n' sh1 --id two
is "the shell's exit code 2 is passed on too" "$RC" 2
unlike "and is not taken for a usage error" "$ERR" 'usage'

shell 'echo two-$((1+1))\n' sh1 --id second
is "at the end of stdin the shell exits: 0 after a command that succeeded" \
    "$RC" 0
like "the command ran (two-2)" "$OUT" '^two-2$'

shell 'false' sh1 --id third
is "a last line without a newline still runs; the last status is kept (1)" \
    "$RC" 1

shell '' sh1 --id empty
is "an empty stdin: the shell exits 0" "$RC" 0

shell 'exit 0\n' no-such-sandbox
is "an unknown sandbox: exit 1" "$RC" 1
like "and it says so" "$ERR" 'no such sandbox'

shell '' 'Bad!Name'
is "a name that cannot be a sandbox's: usage error, exit 2" "$RC" 2

shell '' sh1 --id
is "--id without a value: exit 2" "$RC" 2

# With a tty (script(1) makes one): raw mode, the size, a resize (the
# kernel sends SIGWINCH on TIOCSWINSZ), the exit code, the tty restored.
if command -v script >/dev/null 2>&1; then
	(sleep 2; printf 'stty size\r'; sleep 3; printf 'stty size\r'; sleep 1
	    printf 'exit 4\r'; sleep 2) | timeout 40 script -qec "
	    stty rows 30 cols 90; G=\$(stty -g)
	    (sleep 4; stty rows 41 cols 101 </dev/tty) &
	    '$PINCER_BIN' --config '$PINCER_CONF' --state '$PINCER_STATE_DIR' \
	        sandbox shell sh1 --id tty
	    echo cli-rc=\$?
	    [ \"\$(stty -g)\" = \"\$G\" ] && echo tty-restored" /dev/null \
	    >"$T_TMP/tty" 2>&1
	TTY=$(sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$T_TMP/tty" | tr -d '\r')
	like "with a tty: the shell sees the terminal's size" "$TTY" '^30 90$'
	like "a resize (SIGWINCH) reaches the shell" "$TTY" '^41 101$'
	like "the shell's exit code comes back" "$TTY" '^cli-rc=4$'
	like "the tty's modes are restored" "$TTY" '^tty-restored$'
else
	skip "with a tty" "script(1) is not installed"
fi

like "the audit log names the local terminal" \
    "$(grep 'action=sandbox.terminal' "$PINCER_LOG")" 'actor=local:owner.*target=sh1'

pincer_stop
shell 'exit 0\n' sh1
is "pincerd not running: exit 1" "$RC" 1
like "and it says it cannot reach pincerd" "$ERR" 'cannot reach pincerd'

done_testing
