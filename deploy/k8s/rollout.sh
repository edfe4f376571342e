#!/usr/bin/env bash
# Install or upgrade Fupin from a kustomize overlay, in the order that keeps it safe:
#   1. everything but the processes (namespace, settings, policies, monitors, generated
#      secrets, RabbitMQ with its vhost, users and permissions, PostgreSQL with its roles,
#      databases and, in prod, its pooler), then wait until all of it is ready;
#   2. the migration Job of this version (the previous one is deleted first: a Job's pod
#      template cannot change), then wait until it has completed;
#   3. the services and the gateway, then wait until each has rolled out.
# Usage: deploy/k8s/rollout.sh deploy/k8s/overlays/prod
set -euo pipefail

overlay=${1:?usage: $0 <overlay directory, e.g. deploy/k8s/overlays/prod>}
namespace=$(sed -n 's/^namespace: *//p' "$overlay/kustomization.yaml")
[[ -n "$namespace" ]] || { echo "no 'namespace:' in $overlay/kustomization.yaml" >&2; exit 1; }
timeout=${FUPIN_ROLLOUT_TIMEOUT:-15m}
processes='app.kubernetes.io/component in (service,gateway)'

echo "1/3 backing services and settings in namespace $namespace"
kubectl apply -k "$overlay" -l 'app.kubernetes.io/component notin (service,gateway,migration)'
# Each process's PostgreSQL password, generated once by External Secrets (secrets.yaml).
kubectl -n "$namespace" wait --for=condition=Ready externalsecrets.external-secrets.io --all --timeout="$timeout"
kubectl -n "$namespace" wait --for=condition=AllReplicasReady rabbitmqcluster/fupin-rabbitmq --timeout="$timeout"
kubectl -n "$namespace" wait --for=condition=Ready cluster.postgresql.cnpg.io/fupin-db --timeout="$timeout"
# The vhost, and each process's RabbitMQ user (its Secret fupin-<process>-user-credentials) with
# its permissions, made by the messaging topology operator.
kubectl -n "$namespace" wait --for=condition=Ready vhosts.rabbitmq.com,users.rabbitmq.com,permissions.rabbitmq.com,topicpermissions.rabbitmq.com,policies.rabbitmq.com --all --timeout="$timeout"
# PgBouncer (prod): the processes connect through it.
for pooler in $(kubectl -n "$namespace" get poolers.postgresql.cnpg.io -o name); do
    kubectl -n "$namespace" rollout status "deployment/${pooler##*/}" --timeout="$timeout"
done
# The migrations need every database: wait until the operator has created each one.
kubectl -n "$namespace" wait --for=jsonpath='{.status.applied}'=true databases.postgresql.cnpg.io --all --timeout="$timeout"

echo "2/3 migrations"
kubectl -n "$namespace" delete job fupin-migrate --ignore-not-found --wait=true
kubectl apply -k "$overlay" -l 'app.kubernetes.io/component=migration'
if ! kubectl -n "$namespace" wait --for=condition=Complete job/fupin-migrate --timeout="$timeout"; then
    echo "migrations did not complete; the services were not touched. Last log lines:" >&2
    kubectl -n "$namespace" logs job/fupin-migrate --tail=50 >&2 || true
    exit 1
fi

echo "3/3 services and gateway"
kubectl apply -k "$overlay" -l "$processes"
# The gateway has no replicas of its own (its autoscaler owns the count) and an autoscaler never
# scales a Deployment up from 0: after a restore scaled it down, start it at the autoscaler's minimum.
for hpa in $(kubectl -n "$namespace" get hpa -l "$processes" -o name); do
    target=$(kubectl -n "$namespace" get "$hpa" -o jsonpath='{.spec.scaleTargetRef.name}')
    if [[ "$(kubectl -n "$namespace" get deployment "$target" -o jsonpath='{.spec.replicas}')" == 0 ]]; then
        kubectl -n "$namespace" scale deployment "$target" \
            --replicas="$(kubectl -n "$namespace" get "$hpa" -o jsonpath='{.spec.minReplicas}')"
    fi
done
for deployment in $(kubectl -n "$namespace" get deployments -l "$processes" -o name); do
    kubectl -n "$namespace" rollout status "$deployment" --timeout="$timeout"
    # `rollout status` calls a Deployment at 0 replicas a success; a process with no pod is not.
    if [[ "$(kubectl -n "$namespace" get "$deployment" -o jsonpath='{.status.readyReplicas}')" =~ ^(0|)$ ]]; then
        echo "$deployment has no ready pod" >&2
        exit 1
    fi
done
echo "done: $(kubectl -n "$namespace" get deployments -l "$processes" --no-headers | wc -l) deployments rolled out"
