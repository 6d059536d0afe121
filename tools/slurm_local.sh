#!/usr/bin/env bash
# A SLURM cluster of one host, for trying and testing deepconv's SLURM path: this machine is the controller and
# the only node (all its CPUs, one partition), munge authenticates, jobs may be requeued.
#   tools/slurm_local.sh start    # as root; needs Debian's slurm-wlm and munge (apt-get install -y slurm-wlm munge)
#   tools/slurm_local.sh stop
#   tools/slurm_local.sh status   # exit 0 when the node takes jobs
# Idempotent: start on a running cluster is a no-op. It writes /etc/slurm/slurm.conf (SLURM_CONF to change that).
set -euo pipefail
conf=${SLURM_CONF:-/etc/slurm/slurm.conf}
state=/var/spool/deepconv-slurm
host=$(hostname -s)

up() { sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; }

stop_daemon() {  # the pid file's process, if it is still that daemon
    local pidfile=$1 name=$2
    if [ -f "$pidfile" ] && [ "$(cat /proc/"$(cat "$pidfile")"/comm 2>/dev/null)" = "$name" ]; then
        kill "$(cat "$pidfile")" || true
    fi
    rm -f "$pidfile"
}

case "${1:-}" in
start)
    if up; then echo "SLURM cluster already running (node $host)"; exit 0; fi
    [ "$(id -u)" = 0 ] || { echo "start the cluster as root (munged, slurmctld and slurmd)" >&2; exit 1; }
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y slurm-wlm munge" >&2; exit 1; }
    done
    cpus=$(nproc --all)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$(dirname "$conf")" "$state/ctld" "$state/d" /var/log/slurm /run/munge /var/lib/munge /var/log/munge
    cat > "$conf" <<EOF
# written by deepconv's tools/slurm_local.sh: a one-host cluster
ClusterName=deepconv
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=${DEEPCONV_SLURM_REQUEUE_DELAY:-30}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobRequeue=1
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
KillWait=30
MinJobAge=3600
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chmod 400 /etc/munge/munge.key; }
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    pgrep -x munged >/dev/null || runuser -u munge -- munged
    pgrep -x slurmctld >/dev/null || slurmctld -f "$conf"
    pgrep -x slurmd >/dev/null || slurmd -f "$conf"
    for _ in $(seq 60); do
        if up; then echo "SLURM cluster running: node $host, $cpus CPUs, partition local"; exit 0; fi
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        sleep 0.5
    done
    echo "the SLURM node did not come up (see /var/log/slurm/slurmctld.log and slurmd.log)" >&2; exit 1 ;;
stop)
    stop_daemon "$state/slurmd.pid" slurmd
    stop_daemon "$state/slurmctld.pid" slurmctld
    stop_daemon /run/munge/munged.pid munged
    echo "SLURM cluster stopped" ;;
status)
    if up; then sinfo; else echo "SLURM cluster not running" >&2; exit 1; fi ;;
*)
    echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
