#!/bin/bash
# SPDX-License-Identifier: MIT
# zz_secrets_in_logs.sh: runs after every other test (Makefile.am orders it).
# Every value a test sent as a secret (a token in a header, a cookie, a query
# string, a file outside the admin UI…) was recorded with secret_register;
# none of them may appear in any daemon log of the run.
. "$TOP_SRCDIR/tests/integration/lib.sh"

LIST="$T_LOGDIR/secrets.list"
if [ ! -s "$LIST" ]; then
	_t_result 1 "the secrets list $LIST exists and is not empty"
	diag "the other tests always register secrets: did they run?"
	done_testing
fi
_t_result 0 "the secrets list exists and is not empty"

LOGS=()
for f in "$T_LOGDIR"/*.log; do
	[ -f "$f" ] && LOGS+=("$f")
done
ok "more than 5 daemon logs to search (found ${#LOGS[@]})" \
	test "${#LOGS[@]}" -gt 5

# One point per distinct secret. A value under 8 characters would match by
# chance, so it cannot show anything: that is a failure of the test that
# registered it.
N=0
while IFS= read -r S; do
	[ -n "$S" ] || continue
	N=$((N + 1))
	DESC="secret $N (${S:0:4}…, ${#S} chars) is in no daemon log"
	if [ "${#S}" -lt 8 ]; then
		_t_result 1 "$DESC"
		diag "too short to search for; register a random_token"
		continue
	fi
	if [ "${#LOGS[@]}" -eq 0 ]; then
		_t_result 0 "$DESC"
		continue
	fi
	FOUND=$(grep -lF -e "$S" -- "${LOGS[@]}")
	if [ -z "$FOUND" ]; then
		_t_result 0 "$DESC"
	else
		_t_result 1 "$DESC"
		diag "found in:" $(printf '%s\n' "$FOUND" | sed "s|^$T_LOGDIR/||")
	fi
done < <(sort -u "$LIST")
ok "at least one secret was searched for ($N)" test "$N" -gt 0

done_testing
