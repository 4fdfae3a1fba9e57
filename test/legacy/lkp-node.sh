#!/bin/sh
# A test node that talks to the legacy endpoint the way lkp-tests' lib/job.sh
# and lib/http.sh do (Compass-CI's lkp-tests): the URL built by
# sync_cluster_state, http_get_cgi printing the command line before the body,
# `tail -n +2` to drop it, wait_cluster_state's loop of up to 100 asks while
# the answer is `retry`, `+`-joined list values, and roles_ip lines exported.
#
# Environment, as lkp sets it for a job: LKP_SERVER, LKP_CGI_PORT, LKP_USER,
# id (the node job id), cluster, node_roles, direct_macs, direct_ips, and
# HOSTNAME. HTTP_CLIENT=curl|wget picks the client (default curl).
#
# NODE_LIFE=test    write_state, wait_start, roles_ip, wait_ready, run the test, finished
# NODE_LIFE=daemon  write_state, wait_start, roles_ip, start the daemon, wait_ready, wait_finish
# NODE_FAIL=1       the test/daemon fails: report failed and exit 1 (as check_exit_code)
#
# Prints to stdout: `answer STATE RESULT` per wait, `export NAME=VALUE` per
# roles_ip line, `done` at the end; to stderr every raw answer.

LKP_USER=${LKP_USER:-lkp}
RESULT_ROOT=${RESULT_ROOT:-$(mktemp -d)}

case "${HTTP_CLIENT:-curl}" in
curl) http_client_cmd="curl -sSf" ;;
wget) http_client_cmd="wget -q --timeout=1800 --tries=1" ;;
*) echo "unknown HTTP_CLIENT $HTTP_CLIENT" >&2; exit 2 ;;
esac

# lib/http.sh: echo the command, then run it; the body follows the echoed line.
http_get_cgi()
{
	http_prefix="http://$LKP_SERVER:${LKP_CGI_PORT:-3000}/~$LKP_USER"
	if [ "${HTTP_CLIENT:-curl}" = wget ]; then
		echo $http_client_cmd "$http_prefix/$1" -O "${2:-/dev/null}"
		$http_client_cmd "$http_prefix/$1" -O "${2:-/dev/null}"
	else
		echo $http_client_cmd "$http_prefix/$1" -o "${2:-/dev/null}"
		$http_client_cmd "$http_prefix/$1" -o "${2:-/dev/null}"
	fi
}

# lib/job.sh
sync_cluster_state()
{
	state_option=
	other_options=
	[ -n "$1" ] && state_option="&state=$1"
	[ -n "$2" ] && {
		shift 1
		other_options="&$(IFS='&' && echo -n "$*")"
	}
	url="cgi-bin/lkp-cluster-sync?job_id=$id&cluster=$cluster&node=$HOSTNAME$state_option$other_options"
	# drop the echoed command line
	http_get_cgi "$url" - | tail -n +2
}

wait_cluster_state()
{
	for i in $(seq 100)
	do
		result=$(sync_cluster_state $1)
		echo "raw $1: $result" >&2
		case $result in
		'abort')
			break
			;;
		'start'|'ready'|'finish')
			echo "answer $1 $result"
			return
			;;
		'retry')
			;;
		esac
	done

	echo "answer $1 abort"
	echo "cluster.abort: 1" >> $RESULT_ROOT/last_state
	[ "$i" -eq 100 ] && {
		sync_cluster_state 'abort' > /dev/null
		echo "cluster.timeout: 1" >> $RESULT_ROOT/last_state
	}
	exit 1
}

wait_other_nodes_start()
{
	sync_cluster_state 'write_state' "node_roles=$(echo "$node_roles" | tr -s ' ' '+')" \
		"ip=${NODE_IP:-$(hostname -I | cut -d' ' -f1)}" \
		"direct_macs=$(echo "$direct_macs" | tr -s ' ' '+')" \
		"direct_ips=$(echo "$direct_ips" | tr -s ' ' '+')" > "$RESULT_ROOT/write_state.json"

	wait_cluster_state 'wait_start'

	while read -r line; do
		[ "${line#\#}" != "$line" ] && continue
		[ -z "$line" ] && continue
		export "$line"
		echo "export $line"
	done <<EOF
$(sync_cluster_state 'roles_ip')
EOF
}

check_exit_code()
{
	[ "$1" = 0 ] && return
	echo "exit_fail: 1" >> $RESULT_ROOT/last_state
	sync_cluster_state 'failed' > "$RESULT_ROOT/failed.json"
	echo "reported failed"
	exit "$1"
}

run_program()
{
	[ "$NODE_FAIL" = 1 ] && check_exit_code 1
	check_exit_code 0
}

wait_other_nodes_start
case "$NODE_LIFE" in
daemon)
	run_program
	wait_cluster_state 'wait_ready'
	wait_cluster_state 'wait_finish'
	;;
*)
	wait_cluster_state 'wait_ready'
	run_program
	wait_cluster_state 'finished'
	;;
esac
# what the programs would see
env | grep -E '^(direct_[A-Za-z0-9_]+_ips|server|client|monitor)=' | sort | sed 's/^/env /'
echo done
