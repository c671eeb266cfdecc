#!/bin/sh
# Starts a Redis node of the highly available profile (deploy/compose-ha.yml) in the role the
# sentinels give it, so a node that comes back after a failover never serves as a master on the
# data it had when it died.
#
#   start-redis.sh FIRST_MASTER [redis-server options...]
#
# FIRST_MASTER is the host this node replicates from on its first start (`-` for the first master
# itself). A node that has data already (a restart: its /data volume kept the append-only file)
# first asks every sentinel which node is the master and under which configuration (its
# config-epoch; each failover raises it), and waits, up to PHYSIO_REDIS_START_WAIT_S (30), while a
# sentinel still reports that master down or a failover under way. It then starts as a replica of
# the newest configuration's master, or as a master when that master is this node (no failover
# happened). When no sentinel answers, it starts as on its first start. docs/deploy.md, "Restart a
# failed Redis node as a replica".
set -u
first_master="$1"
shift
name="${PHYSIO_REDIS_MASTER_NAME:-physio}"
sentinels="${PHYSIO_REDIS_SENTINEL_HOSTS:-redis-sentinel-1 redis-sentinel-2 redis-sentinel-3}"
wait_s="${PHYSIO_REDIS_START_WAIT_S:-30}"
me="$(hostname -i 2>/dev/null | awk '{print $1}')"

# The value of field $2 in `SENTINEL MASTER` output ($1), one field name per line, then its value.
field() { printf '%s\n' "$1" | awk -v key="$2" 'take { print; exit } $0 == key { take = 1 }'; }

# Sets master_host, master_port and settled ("yes" when no answering sentinel reports the master
# down or a failover under way) from the sentinels that answer, keeping the newest configuration.
ask_sentinels() {
  master_host=""
  master_port=""
  settled=yes
  best_epoch=-2
  for sentinel in $sentinels; do
    info="$(timeout 2 redis-cli -h "$sentinel" -p 26379 --raw sentinel master "$name" 2>/dev/null)" || continue
    host="$(field "$info" ip)"
    port="$(field "$info" port)"
    if [ -z "$host" ] || [ -z "$port" ]; then continue; fi
    # The address a failover in progress already names (the promoted replica), as the services use.
    named="$(timeout 2 redis-cli -h "$sentinel" -p 26379 --raw sentinel get-master-addr-by-name "$name" 2>/dev/null)"
    named_host="$(printf '%s\n' "$named" | sed -n 1p)"
    named_port="$(printf '%s\n' "$named" | sed -n 2p)"
    if [ -n "$named_host" ] && [ -n "$named_port" ]; then
      host="$named_host"
      port="$named_port"
    fi
    epoch="$(field "$info" config-epoch)"
    case "$epoch" in '' | *[!0-9]*) epoch=-1 ;; esac
    case ",$(field "$info" flags)," in
      *,s_down,* | *,o_down,* | *,failover_in_progress,* | *,promoted,*) settled=no ;;
    esac
    if [ "$epoch" -gt "$best_epoch" ]; then
      best_epoch="$epoch"
      master_host="$host"
      master_port="$port"
    fi
  done
}

if [ -n "$(ls -A /data 2>/dev/null)" ]; then
  waited=0
  while :; do
    ask_sentinels
    [ -z "$master_host" ] && break  # no sentinel answers: a first start of the whole profile
    [ "$settled" = yes ] && break
    if [ "$waited" -ge "$wait_s" ]; then
      echo "start-redis: the sentinels have not settled on a master after ${wait_s}s; starting as they say now" >&2
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  if [ -n "$master_host" ]; then
    if [ "$master_host" = "$me" ]; then
      echo "start-redis: the sentinels name this node ($me) the master; starting as the master" >&2
      exec redis-server "$@" --protected-mode no
    fi
    echo "start-redis: the sentinels name $master_host:$master_port the master; starting as its replica" >&2
    exec redis-server --replicaof "$master_host" "$master_port" "$@" --protected-mode no
  fi
fi

if [ "$first_master" = - ]; then
  exec redis-server "$@" --protected-mode no
fi
# By address, resolved once: see deploy/compose-ha.yml on why never by name afterwards.
address="$(getent hosts "$first_master" | cut -d' ' -f1)"
[ -n "$address" ] || { echo "start-redis: cannot resolve $first_master" >&2; exit 1; }
exec redis-server --replicaof "$address" 6379 "$@" --protected-mode no
