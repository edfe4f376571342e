#!/usr/bin/env bash
# Install, once per cluster and in the order they depend on each other, the operators Fupin's
# manifests need, at the versions its CRD schemas were vendored from (deploy/crds/README.md),
# waiting until each is up:
#   deploy/k8s/install-operators.sh                 # everything (prod: backups and monitoring)
#   deploy/k8s/install-operators.sh --no-monitoring # a cluster whose Prometheus is already there
# Needs kubectl and helm, and cluster-admin. Re-running it upgrades in place.
set -euo pipefail
monitoring=1
[[ "${1:-}" == "--no-monitoring" ]] && monitoring=0
timeout=${FUPIN_ROLLOUT_TIMEOUT:-10m}
available() { kubectl -n "$1" wait --for=condition=Available deployment --all --timeout="$timeout"; }

echo "cert-manager 1.21 (the webhooks of the operators below, the Ingress certificate)"
kubectl apply -f https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml
available cert-manager

echo "CloudNativePG 1.30 (PostgreSQL) and its Barman Cloud plugin 0.14 (backups)"
kubectl apply --server-side -f \
    https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-1.30/releases/cnpg-1.30.0.yaml
available cnpg-system
kubectl apply -f https://github.com/cloudnative-pg/plugin-barman-cloud/releases/download/v0.14.0/manifest.yaml
available cnpg-system

echo "RabbitMQ cluster operator 2.22 and messaging topology operator 1.20 (vhost, users, permissions)"
kubectl apply -f https://github.com/rabbitmq/cluster-operator/releases/download/v2.22.3/cluster-operator.yml
kubectl apply -f \
    https://github.com/rabbitmq/messaging-topology-operator/releases/download/v1.20.1/messaging-topology-operator-with-certmanager.yaml
available rabbitmq-system

echo "External Secrets 2.9 (database passwords generated in the cluster; the county's secret store)"
helm repo add external-secrets https://charts.external-secrets.io >/dev/null
helm upgrade --install external-secrets external-secrets/external-secrets --version 2.9.0 \
    -n external-secrets --create-namespace --wait --timeout "$timeout"

if [[ $monitoring == 1 ]]; then
    echo "kube-prometheus-stack (Prometheus, Alertmanager, kube-state-metrics, the monitoring CRDs)"
    helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
    # Pin the chart: set KUBE_PROMETHEUS_STACK_VERSION to the version you tested.
    helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
        ${KUBE_PROMETHEUS_STACK_VERSION:+--version "$KUBE_PROMETHEUS_STACK_VERSION"} \
        -n monitoring --create-namespace --wait --timeout "$timeout" \
        --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
        --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
        --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
        --set-json 'alertmanager.alertmanagerSpec.alertmanagerConfigSelector={}' \
        --set-json 'alertmanager.alertmanagerSpec.alertmanagerConfigNamespaceSelector={}'
else
    # Fupin's ServiceMonitor, PodMonitor and PrometheusRule need the CRDs at least.
    kubectl apply --server-side -f \
        https://github.com/prometheus-operator/prometheus-operator/releases/download/v0.93.0/stripped-down-crds.yaml
fi
echo "operators installed"
