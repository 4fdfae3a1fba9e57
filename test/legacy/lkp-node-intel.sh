#!/bin/sh
# A test node that runs intel's upstream lkp-tests lib/job.sh cluster
# functions, function by function: the same requests, states, order and
# loops. It follows lib/job.sh of intel/lkp-tests at commit
# 194711ccffaa4ccd15ee6971f9345b12d2671db7: no job_id (the node is
# cluster=<spec name>&node=$HOSTNAME), no start barrier, and start_daemon
# reports `finished` right after starting the daemon, before write_state and
# wait_ready. Written afresh, not copied; lkp-env.sh stands in for
# lib/http.sh, `hostname -I`, `ip` and the monitors' wakeup.
#
# Environment and output: see lkp-env.sh (`id` is not used).

. "$(dirname "$0")/lkp-env.sh"

should_wait_cluster()
{
	[ -z "$LKP_SERVER" ] && return 1
	[ -z "$node_roles" ] && return 1
	[ "$cluster" = "cs-localhost" ] && return 1
	return 0
}

# other_options is not local in job.sh either: once write_state set it, every
# later request carries the write_state parameters again.
sync_cluster_state()
{
	local state_option
	[ -n "$1" ] && state_option="&state=$1"
	if [ -n "$2" ]; then
		shift 1
		other_options="&$(IFS='&' && echo -n "$*")"
	fi

	should_wait_cluster || return 0
	local url="cgi-bin/lkp-cluster-sync?cluster=$cluster&node=$HOSTNAME$state_option$other_options"
	# the first line is http_get_cgi's echoed command line
	http_get_cgi "$url" - | tail -n +2
}

# Up to 100 asks; only ready and finish end the wait (there is no start).
wait_cluster_state()
{
	for i in $(seq 100)
	do
		result=$(sync_cluster_state $1)
		case $result in
		abort) break ;;
		ready) return ;;
		finish) return ;;
		retry) ;;
		esac
	done

	wakeup_pre_test
	echo "cluster.abort: 1" >> $TMP_RESULT_ROOT/last_state

	if [ "$i" -eq 100 ]; then
		sync_cluster_state 'abort'
		echo "cluster.timeout: 1" >> $TMP_RESULT_ROOT/last_state
	fi

	exit 1
}

wait_other_nodes()
{
	should_wait_cluster || return

	local program_type=$1
	[ "$program_type" = 'test' ] && echo "${*#test }" >> $TMP/executed-test-programs

	mkdir $TMP/wait_other_nodes-once 2>/dev/null || return

	sync_cluster_state 'write_state' "node_roles=$(echo "$node_roles" | tr -s ' ' '+')" \
		"ip=$(hostname -I | cut -d' ' -f1)" \
		"direct_macs=$(echo "$direct_macs" | tr -s ' ' '+')" \
		"direct_ips=$(echo "$direct_ips" | tr -s ' ' '+')"

	local idx=1
	for mac in $direct_macs
	do
		local device ip
		device=$(ip link | grep -B1 $mac | awk -F': ' 'NR==1 {print $2}')
		ip=$(echo $direct_ips | cut -d' ' -f $idx)
		ip addr add $ip/24 dev $device
		ip link set $device up
		# (set_nic_irq_affinity is not set by these tests)
		idx=$((idx + 1))
	done

	wait_cluster_state 'wait_ready'

	# each line NAME=VALUE is exported (an empty line would be `export ""`: dash exits)
	while read -r line; do
		[ "${line#\#}" != "$line" ] && continue
		export "$line"
	done <<END_OF_ROLES
$(sync_cluster_state 'roles_ip')
END_OF_ROLES
}

# A node that only started daemons waits until the test nodes are done.
wait_clients_finish()
{
	[ -n "$node_roles" ] || return
	[ "$cluster" = "cs-localhost" ] && return
	[ -f "$TMP/executed-test-programs" ] && return

	wait_cluster_state 'wait_finish'
}

check_exit_code()
{
	local exit_code=$1

	[ "$exit_code" = 0 ] && return

	wakeup_pre_test

	echo "${program_type}.${program}.exit_code.$exit_code: 1" >> $TMP_RESULT_ROOT/last_state
	echo "exit_fail: 1" >> $TMP_RESULT_ROOT/last_state
	sync_cluster_state 'failed'
	exit "$exit_code"
}

record_program()
{
	local i
	local program

	for i
	do
		[ "$i" != "${i#*=}" ] && continue
		[ "$i" != "${i%/wrapper}" ] && continue

		program=${i##*/}
		echo "${program}" >> $TMP/program_list
		echo "${program}"
		return 0
	done

	return 1
}

run_program()
{
	local i
	local has_env=

	local program_type=$1
	shift

	local program=$(record_program "$@")

	for i
	do
		if [ "$i" != "${i#*=}" ]; then
			has_env=1
			break
		fi
	done

	if [ -n "$has_env" ]; then
		env "$@"
	else
		"$@"
	fi

	check_exit_code $?
}

start_daemon()
{
	echo $$ >> $TMP/pid-start-daemon

	# (the cs-localhost branch, which runs the daemon in the background, is not taken by these tests)
	run_program daemon "$@"

	sync_cluster_state 'finished'
	# a daemon that failed to start has reported `failed` and exited above

	wait_other_nodes 'daemon'
	wakeup_pre_test
	wait_clients_finish
}

run_test()
{
	if need_run_on_vmm; then
		return 1
	fi
	echo $$ >> $TMP/pid-run-tests

	wait_other_nodes 'test'
	wakeup_pre_test
	run_program test "$@"
	sync_cluster_state 'finished'
}

run_node_life
