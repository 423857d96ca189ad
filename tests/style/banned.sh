# SPDX-License-Identifier: MIT
# banned.sh: no sprintf, vsprintf, strcpy, strcat, gets or strtok in our C.
#
# These write without a bound or keep hidden state; snprintf, strtok_r and
# friends are the replacements. Calls are matched as whole identifiers
# followed by "(", outside comments and string or character literals, so
# snprintf( or strtok_r( or a comment naming sprintf() do not count.
set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

BANNED="sprintf vsprintf strcpy strcat gets strtok"

# Print FILE:LINE: text for each line calling function $1 in files $2...
find_calls() {
	local fn=$1
	shift
	awk -v re="(^|[^A-Za-z0-9_])$fn[ \t]*\\\\(" '
	FNR == 1 { incomment = 0 }
	{
		line = $0; out = ""; i = 1; n = length(line)
		while (i <= n) {
			c = substr(line, i, 1); c2 = substr(line, i, 2)
			if (incomment) {
				if (c2 == "*/") { incomment = 0; i += 2 }
				else i++
				continue
			}
			if (c2 == "/*") { incomment = 1; i += 2; continue }
			if (c2 == "//")
				break
			if (c == "\"" || c == "\047") {
				q = c
				for (i++; i <= n; i++) {
					if (substr(line, i, 1) == q)
						break
					if (substr(line, i, 1) == "\\")
						i++
				}
				i++
				out = out " \"\" "
				continue
			}
			out = out c
			i++
		}
		if (out ~ re)
			print FILENAME ":" FNR ": " line
	}' "$@"
}

files=()
for f in "$TOP_SRCDIR"/gateway/*.c "$TOP_SRCDIR"/gateway/*.h; do
	[[ -f $f ]] && files+=("$f")
done
while IFS= read -r f; do
	files+=("$f")
done < <(find "$TOP_SRCDIR/tests" "$TOP_SRCDIR/sandbox" \
	-name node_modules -prune -o -type f -name '*.[ch]' -print \
	2>/dev/null | sort)

n=0
ok() {	# ok PASS DESCRIPTION
	n=$((n + 1))
	if [[ $1 == yes ]]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
	fi
}

# The matcher itself: it must see a call and must not see look-alikes.
sample=$(mktemp)
trap 'rm -f "$sample"' EXIT
cat >"$sample" <<'SAMPLE'
	snprintf(a, 1, "%s", "sprintf(");	/* sprintf(x) */
	n = strtok_r(s, ",", &save) + fgets(b, 1, f) + my_strcpy(a, b);
	// strcat(a, b)
	/*
	 * gets(buf)
	 */
	x = '(' + strncpy(a, b, 1);
	sprintf (buf, "%d", 1);
SAMPLE
hits=$(find_calls sprintf "$sample"; for fn in strtok strcat gets strcpy; do
	find_calls "$fn" "$sample"; done)
if [[ $hits == "$sample:8: "* && $(wc -l <<<"$hits") -eq 1 ]]; then
	ok yes "the matcher finds a call and ignores look-alikes"
else
	ok no "the matcher finds a call and ignores look-alikes"
	sed 's/^/#   /' <<<"${hits:-(no hits)}"
fi

if [[ ${#files[@]} -gt 0 ]]; then
	ok yes "${#files[@]} C files to check"
else
	ok no "no C files found under $TOP_SRCDIR"
fi

for fn in $BANNED; do
	hits=$(find_calls "$fn" "${files[@]}")
	if [[ -z $hits ]]; then
		ok yes "no $fn()"
	else
		ok no "no $fn()"
		sed "s|^$TOP_SRCDIR/|#   |" <<<"$hits"
	fi
done
echo "1..$n"
