# LAVA MultiNode calls for lkp-tests programs that talk to cluster-sync over
# the legacy endpoint (no NATS, no node agent). Source it from a test or
# daemon script of an lkp job:
#
#   . "$LKP_SRC/lib/lava-multinode.sh"      # or wherever you keep this file
#   lava_send server-ready ip=$(hostname -I | cut -d ' ' -f 1) port=5201
#   lava_wait client-done && cat "$CS_SYNC_CACHE"
#   lava_wait_all results client
#   lava_sync done
#
# It uses what lkp already sets for a job: LKP_SERVER, LKP_CGI_PORT (default
# 3000), LKP_USER (default lkp), id (the node job id), cluster, HOSTNAME.
# Each call asks
#   GET http://$LKP_SERVER:$LKP_CGI_PORT/~$LKP_USER/cgi-bin/lkp-cluster-sync
#       ?job_id=$id&cluster=$cluster&node=$HOSTNAME&state=send|wait|wait_all|sync&msg=ID[&role=R][&key=value...]
# and the answer's first line is `ok`, `abort` (then the reason) or `retry`
# (the server's long-poll limit: asked again, the wait keeps its place).
# Waits write their data to $CS_SYNC_CACHE (default LAVA's
# /tmp/lava_multi_node_cache.txt): `key=value` lines for lava_wait,
# `JOB:key=value` for lava_wait_all and lava_sync; lava_send empties it.
# CS_SYNC_TIMEOUT (seconds, default none) bounds each wait.
#
# Returns 0 done, 2 refused (bad ID, key or role; a limit), 3 the cluster
# aborted (stop the test), 4 timed out, 5 the server could not be asked.
# Every failure says why on stderr. POSIX sh; needs curl or wget.

_lava_urlencode()
{
	printf '%s' "$1" | od -An -tx1 -v | awk '
		BEGIN { for (i = 0; i < 256; i++) if (i == 45 || i == 46 || i == 95 || i == 126 || (i >= 48 && i <= 57) || (i >= 65 && i <= 90) || (i >= 97 && i <= 122)) safe[sprintf("%02x", i)] = sprintf("%c", i) }
		{ for (i = 1; i <= NF; i++) printf "%s", ($i in safe) ? safe[$i] : "%" toupper($i) }'
}

# _lava_call STATE ID [extra query parts...]: prints the body, returns the HTTP outcome.
_lava_call()
{
	_lava_state=$1 _lava_id=$2
	shift 2
	_lava_url="http://$LKP_SERVER:${LKP_CGI_PORT:-3000}/~${LKP_USER:-lkp}/cgi-bin/lkp-cluster-sync?job_id=$id&cluster=$cluster&node=$HOSTNAME&state=$_lava_state&msg=$(_lava_urlencode "$_lava_id")"
	for _lava_kv in "$@"; do
		case $_lava_kv in
		*=*) _lava_url="$_lava_url&$(_lava_urlencode "${_lava_kv%%=*}")=$(_lava_urlencode "${_lava_kv#*=}")" ;;
		*) _lava_url="$_lava_url&$_lava_kv" ;;
		esac
	done
	_lava_body=$(mktemp)
	if command -v curl >/dev/null 2>&1; then
		_lava_code=$(curl -sS -o "$_lava_body" -w '%{http_code}' "$_lava_url") || _lava_code=000
	else
		if wget -q --content-on-error --timeout=1800 --tries=1 -O "$_lava_body" "$_lava_url"; then _lava_code=200; else _lava_code=400; fi
		[ -s "$_lava_body" ] || _lava_code=000
	fi
	cat "$_lava_body"
	rm -f "$_lava_body"
	case $_lava_code in
	200) return 0 ;;
	4??) return 2 ;;
	*) return 5 ;;
	esac
}

# _lava_ask STATE ID [data...]: asks until ok / abort / timeout; writes the cache.
_lava_ask()
{
	_lava_cmd=$1 _lava_msg=$2
	_lava_cache=${CS_SYNC_CACHE:-/tmp/lava_multi_node_cache.txt}
	_lava_start=$(date +%s)
	[ -n "$_lava_msg" ] || { echo "lava_$_lava_cmd: a message ID is missing" >&2; return 2; }
	while :; do
		_lava_answer=$(_lava_call "$@")
		_lava_rc=$?
		if [ $_lava_rc -ne 0 ]; then
			echo "lava_$_lava_cmd $_lava_msg: ${_lava_answer:-no answer from $LKP_SERVER}" >&2
			return $_lava_rc
		fi
		case $(printf '%s\n' "$_lava_answer" | head -n 1) in
		ok)
			printf '%s\n' "$_lava_answer" | tail -n +2 > "$_lava_cache.$$" && mv "$_lava_cache.$$" "$_lava_cache"
			return 0
			;;
		abort)
			echo "lava_$_lava_cmd $_lava_msg: cluster aborted: $(printf '%s\n' "$_lava_answer" | tail -n +2)" >&2
			return 3
			;;
		retry)
			if [ -n "$CS_SYNC_TIMEOUT" ] && [ $(( $(date +%s) - _lava_start )) -ge "$CS_SYNC_TIMEOUT" ]; then
				echo "lava_$_lava_cmd $_lava_msg: timed out after ${CS_SYNC_TIMEOUT}s" >&2
				return 4
			fi
			;;
		*)
			echo "lava_$_lava_cmd $_lava_msg: unexpected answer: $_lava_answer" >&2
			return 5
			;;
		esac
		# A sync asked again only waits: its send is folded already.
		[ "$1" = sync ] && set -- wait_all "$2"
	done
}

lava_send() { _lava_ask send "$@"; }
lava_wait() { _lava_ask wait "$1"; }
lava_wait_all() { if [ -n "$2" ]; then _lava_ask wait_all "$1" "role=$2"; else _lava_ask wait_all "$1"; fi; }
lava_sync() { _lava_ask sync "$1"; }
