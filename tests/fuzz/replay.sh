# SPDX-License-Identifier: MIT
# replay.sh: replays the committed fuzz corpus through each target, as TAP.
#
# Each target prints its own TAP; here the test points are renumbered into
# one stream with one plan. A target that dies (a crash, an abort, a
# sanitizer report) prints no plan of its own, which counts as a failure.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${TOP_BUILDDIR:=$PWD}"

n=0

replay() {
	local target=$1 corpus=$2 out rc line planned=no

	out=$("$TOP_BUILDDIR/tests/fuzz/$target" \
	    "$TOP_SRCDIR/tests/fuzz/corpus/$corpus")
	rc=$?
	while IFS= read -r line; do
		if [[ $line =~ ^(not\ )?ok\ [0-9]+(.*)$ ]]; then
			n=$((n + 1))
			echo "${BASH_REMATCH[1]}ok $n -" \
			    "$corpus/${BASH_REMATCH[2]# - }"
		elif [[ $line =~ ^1\.\.[0-9]+$ ]]; then
			planned=yes
		elif [[ -n $line ]]; then
			echo "# $line"
		fi
	done <<<"$out"
	if [[ $planned == no ]]; then
		n=$((n + 1))
		echo "not ok $n - $target died on corpus/$corpus (status $rc)" \
		    "after the last input above; see the log for the stack"
	fi
}

replay fuzz_head head
replay fuzz_config config
replay fuzz_sse sse
replay fuzz_xlate xlate
replay fuzz_hooks hooks
replay fuzz_cdp cdp
replay fuzz_s3 s3
replay fuzz_html html
echo "1..$n"
