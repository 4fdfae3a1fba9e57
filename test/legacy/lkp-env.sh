# What an lkp-tests job script has around lib/job.sh, for the test nodes
# lkp-node.sh (Compass-CI's job.sh) and lkp-node-intel.sh (intel's job.sh):
# lib/http.sh's http_get_cgi (curl or wget, printing its command line before
# the body), and stand-ins for what a test machine has and a test runner
# has not: `hostname -I` answers $NODE_IP, `ip` only records what it is asked
# (and lists a device per MAC for `ip link`), the monitors' wakeup is a no-op.
# Sourced by the flavour scripts, never run on its own.
#
# Environment, as lkp sets it for a job: LKP_SERVER, LKP_CGI_PORT, LKP_USER,
# id (the node job id; Compass-CI only), cluster, node_roles, direct_macs,
# direct_ips, HOSTNAME; and for the test: NODE_IP, NODE_LIFE (daemon|test),
# NODE_PROGRAM (the program's command line; default `true`), HTTP_CLIENT
# (curl|wget, default curl), RESULT_ROOT, TMP, ETC_HOSTS (the file that
# stands for /etc/hosts), RELEASE and PAUSE_BEFORE (below).
#
# stderr gets `answer STATE FIRST-LINE-OF-BODY` per request; stdout gets what
# the job prints, then `env NAME=VALUE` for every exported role variable and
# `done` when the job script ran to its end.

LKP_USER=${LKP_USER:-lkp}
RESULT_ROOT=${RESULT_ROOT:-$(mktemp -d)}
TMP=${TMP:-$(mktemp -d)}
TMP_RESULT_ROOT=${TMP_RESULT_ROOT:-$RESULT_ROOT}
ETC_HOSTS=${ETC_HOSTS:-$TMP/etc-hosts}

case "${HTTP_CLIENT:-curl}" in
curl) http_client_cmd="curl -sSf" ;;
wget) http_client_cmd="wget -q --timeout=1800 --tries=1" ;;
*) echo "unknown HTTP_CLIENT $HTTP_CLIENT" >&2; exit 2 ;;
esac

# lib/http.sh (http_do_request): the command line is echoed, then run; the
# body follows on stdout when the output file is `-`.
http_get_cgi()
{
	http_prefix="http://$LKP_SERVER:${LKP_CGI_PORT:-3000}/~$LKP_USER"
	if [ "${HTTP_CLIENT:-curl}" = wget ]; then out_opt=-O; else out_opt=-o; fi
	echo $http_client_cmd "$http_prefix/$1" $out_opt "${2:-/dev/null}"
	asked=$(echo "$1" | sed -n 's/.*[?&]state=\([^&]*\).*/\1/p')
	# PAUSE_BEFORE=STATE: the first such request waits for $RELEASE (a slow machine, made on purpose)
	if [ -n "$PAUSE_BEFORE" ] && [ "$asked" = "$PAUSE_BEFORE" ] && mkdir "$TMP/paused" 2>/dev/null; then
		echo "paused before $asked" >&2
		while [ ! -e "$RELEASE" ] && [ -d "$TMP" ]; do sleep 0.05; done
	fi
	body=$($http_client_cmd "$http_prefix/$1" $out_opt -)
	printf 'answer %s %s\n' "${asked:-none}" "$(printf '%s\n' "$body" | head -n 1)" >&2
	[ "${2:-/dev/null}" = - ] && printf '%s' "$body"
}

hostname()
{
	if [ "$1" = -I ]; then echo "$NODE_IP "; else command hostname "$@"; fi
}

ip()
{
	echo "ip $*" >> "$TMP/ip-commands"
	[ "$1" = link ] && [ -z "$2" ] && {
		n=2
		for mac in $direct_macs
		do
			echo "$n: eth$n: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP mode DEFAULT group default qlen 1000"
			echo "    link/ether $mac brd ff:ff:ff:ff:ff:ff"
			n=$((n + 1))
		done
	}
	return 0
}

need_run_on_vmm()
{
	return 1
}

# The monitors are not run here; lkp's wakeup_pre_test also sleeps 1 s, which
# changes nothing for the synchronisation.
wakeup_pre_test()
{
	mkdir $TMP/wakeup_pre_test-once 2>/dev/null || return
	date '+%s' > $TMP/start_time
}

# What lkp's generated job script does for this node: start_daemon or run_test.
run_node_life()
{
	case "$NODE_LIFE" in
	daemon) start_daemon ${NODE_PROGRAM:-true} ;;
	test) run_test ${NODE_PROGRAM:-true} ;;
	*) echo "NODE_LIFE must be daemon or test" >&2; exit 2 ;;
	esac
	echo # lkp's answers printed above end without a newline
	env | grep -E '^(direct_[A-Za-z0-9_]+_ips|server|client|monitor|store)=' | sort | sed 's/^/env /'
	echo done
}
