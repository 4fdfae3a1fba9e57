#!/bin/sh
# A test node that runs Compass-CI's lkp-tests lib/job.sh cluster functions,
# function by function: the same requests, states, order and loops. It
# follows lib/job.sh of TangliziGit/lkp-tests at commit
# 6aeec2b55943160e3ec280d2dfda7c8df506c6e5 (Compass-CI's lkp-tests: job_id
# in every request, a `start` barrier, roles_ip lines appended to /etc/hosts;
# the fengguang/lkp-tests copies in the source index, 81811bb and 07fd2e0,
# are the older form without job_id that intel/lkp-tests still has, see
# lkp-node-intel.sh). Written afresh, not copied; where it must differ it
# says so: /etc/hosts is $ETC_HOSTS, and lkp-env.sh stands in for
# lib/http.sh, `hostname -I`, `ip` and the monitors' wakeup.
#
# Environment and output: see lkp-env.sh.

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
	local url="cgi-bin/lkp-cluster-sync?job_id=$id&cluster=$cluster&node=$HOSTNAME$state_option$other_options"
	# the first line is http_get_cgi's echoed command line
	http_get_cgi "$url" - | tail -n +2
}

# Up to 100 asks; `retry` and anything unknown ask again at once.
wait_cluster_state()
{
	for i in $(seq 100)
	do
		result=$(sync_cluster_state $1)
		case $result in
		abort) break ;;
		start|ready|finish) return ;;
		retry) ;;
		esac
	done

	wakeup_pre_test
	echo "cluster.abort: 1" >> $RESULT_ROOT/last_state

	if [ "$i" -eq 100 ]; then
		sync_cluster_state 'abort'
		echo "cluster.timeout: 1" >> $RESULT_ROOT/last_state
	fi

	exit 1
}

config_ips_by_macs()
{
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
}

wait_other_nodes_start()
{
	if [ -n "$direct_macs" ]; then
		config_ips_by_macs
	else
		direct_ips=$(ip route get "${BR1_ROUTE:-172.20.0.1}" | awk -F'src ' '{print $2; exit}' | awk '{print $1}')
		direct_macs=$(ip addr | grep -B1 "$direct_ips" | grep "link/ether" | awk '{print $2}')
	fi

	sync_cluster_state 'write_state' "node_roles=$(echo "$node_roles" | tr -s ' ' '+')" \
		"ip=$(hostname -I | cut -d' ' -f1)" \
		"direct_macs=$(echo "$direct_macs" | tr -s ' ' '+')" \
		"direct_ips=$(echo "$direct_ips" | tr -s ' ' '+')"

	wait_cluster_state 'wait_start'

	# each line NAME=VALUE: "VALUE NAME" into /etc/hosts, then exported
	while read line; do
		[ "${line#\#}" != "$line" ] && continue
		echo "${line#*=} ${line%=*}" >> "$ETC_HOSTS"
		export "$line"
	done <<END_OF_ROLES
$(sync_cluster_state 'roles_ip')
END_OF_ROLES
}

wait_other_nodes()
{
	should_wait_cluster || return

	local program_type=$1
	[ "$program_type" = 'test' ] && echo "${*#test }" >> $TMP/executed-test-programs
	if [ "$program_type" = 'start' ]; then
		mkdir $TMP/wait_other_nodes-start-once 2>/dev/null || return
		wait_other_nodes_start && return
	fi

	mkdir $TMP/wait_other_nodes-once 2>/dev/null || return
	wait_cluster_state 'wait_ready'
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

	echo "${program_type}.${program}.exit_code.$exit_code: 1" >> $RESULT_ROOT/last_state
	echo "exit_fail: 1" >> $RESULT_ROOT/last_state
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
	wait_other_nodes 'start'
	run_program daemon "$@"

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

	wait_other_nodes 'start'
	wait_other_nodes 'test'
	wakeup_pre_test
	run_program test "$@"
	sync_cluster_state 'finished'
}

run_node_life
