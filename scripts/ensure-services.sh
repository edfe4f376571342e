#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) answer.
# Starts them when installed but stopped; installs them with apt-get when missing and we are
# root (or have sudo); otherwise says exactly what to run. Exits non-zero if either is still down.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- ; }
wait_port() { for _ in $(seq 1 "${2:-60}"); do port_open "$1" && return 0; sleep 1; done; return 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  echo "installing $* with apt-get ..."
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  port_open 5432 && { echo "PostgreSQL: up on 127.0.0.1:5432"; return 0; }
  if ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql || { echo "PostgreSQL is missing: install it (sudo apt-get install postgresql) and start it." >&2; return 1; }
  fi
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    echo "starting PostgreSQL $version ..."
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
      || as_root pg_ctlcluster "$version" main start 2>/dev/null || true
  fi
  wait_port 5432 30 && { echo "PostgreSQL: up"; return 0; }
  echo "PostgreSQL did not come up: run 'sudo pg_ctlcluster <version> main start' and see /var/log/postgresql/." >&2
  return 1
}

ensure_rabbitmq() {
  port_open 5672 && { echo "RabbitMQ: up on 127.0.0.1:5672"; return 0; }
  if ! command -v rabbitmq-server >/dev/null; then
    apt_install rabbitmq-server || { echo "RabbitMQ is missing: install it (sudo apt-get install rabbitmq-server) and start it." >&2; return 1; }
  fi
  echo "starting RabbitMQ ..."
  as_root rabbitmq-server -detached 2>/dev/null || true
  wait_port 5672 90 && { echo "RabbitMQ: up"; return 0; }
  echo "RabbitMQ did not come up: run 'sudo rabbitmq-server -detached' and see /var/log/rabbitmq/." >&2
  return 1
}

status=0
ensure_postgres || status=1
ensure_rabbitmq || status=1
exit $status
