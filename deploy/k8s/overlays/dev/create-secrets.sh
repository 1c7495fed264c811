#!/bin/sh
# Create (or replace) the Secret salesops-secrets of the dev overlay with fresh random
# values: the in-cluster PostgreSQL's password and the URLs built on it, the Redis URL,
# a JWT signing secret and a sealing key. Dev only: production keys come from your
# secret manager (../../README.md, "Secrets").
#
#   deploy/k8s/overlays/dev/create-secrets.sh [namespace]
set -eu
namespace=${1:-salesops}
random() { head -c "$1" /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_'; }

password=$(random 24)
set -- --from-literal=POSTGRES_PASSWORD="$password"
for service in leads pipeline knowledge integration notify; do
    upper=$(echo "$service" | tr '[:lower:]' '[:upper:]')
    set -- "$@" --from-literal="SALESOPS_${upper}_DATABASE_URL=postgresql://salesops:${password}@postgres:5432/${service}"
done
# A Fernet key is the urlsafe base64 of 32 random bytes, padding included.
fernet=$(head -c 32 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_')

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$namespace" create secret generic salesops-secrets "$@" \
    --from-literal=SALESOPS_REDIS_URL=redis://redis:6379/0 \
    --from-literal=SALESOPS_JWT_SECRET="$(random 48)" \
    --from-literal=SALESOPS_SECRETS_KEY="$fernet" \
    --from-literal=SALESOPS_PAGE_TOKEN_SECRET="$(random 32)" \
    --dry-run=client -o yaml | kubectl apply -f -
