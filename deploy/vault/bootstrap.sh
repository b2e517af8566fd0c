#!/bin/sh
# Operator step, run once per cluster (and again after an upgrade; every step is idempotent) with an admin token:
# mounts the engines the service uses, installs its policies and the codec's Transit key, and binds the Kubernetes
# service accounts to them. The service itself never mounts anything: its policy (policies/orchestrator.hcl) can
# only read the mount tables. Works with `bao` or `vault` (BAO=vault); address and token from BAO_ADDR/BAO_TOKEN
# (or VAULT_ADDR/VAULT_TOKEN).
#
# Optional:
#   KUBERNETES_HOST              configure Kubernetes auth against this API server (in-cluster: https://kubernetes.default.svc)
#   LOBSTACK_ORCHESTRATOR_TOKEN_ID  also create a periodic orchestrator token with this id (compose and tests only;
#                                   in Kubernetes the worker logs in with its service account instead)
set -eu
BAO="${BAO:-bao}"
HERE="$(cd "$(dirname "$0")" && pwd)"

mounted() { # mounted secrets|auth PATH
    "$BAO" "$1" list -format=json | grep -q "\"$2/\""
}

mounted secrets secret || "$BAO" secrets enable -path=secret -version=2 kv
mounted secrets transit || "$BAO" secrets enable -path=transit transit
# The agents' CA: a role per agent (made by the service) issues a certificate for that agent's name only, for at most
# 24 hours (the role's max_ttl). The mount's own max TTL must cover the root's ten years, which it also caps.
mounted secrets pki-agents || "$BAO" secrets enable -path=pki-agents -max-lease-ttl=87600h pki
"$BAO" read -field=certificate pki-agents/cert/ca 2>/dev/null | grep -q "BEGIN CERTIFICATE" ||
    "$BAO" write -field=expiration pki-agents/root/generate/internal common_name="Lobstack agents CA" \
        ttl=87600h key_type=ec key_bits=256 >/dev/null
mounted auth approle || "$BAO" auth enable -path=approle approle
mounted auth kubernetes || "$BAO" auth enable -path=kubernetes kubernetes
# No user lockout on the agents' AppRole mount, on every run (also for a mount made earlier): a role_id travels in
# the agent's user-data, and a few wrong SecretIDs against it would lock the agent out, its valid single-use SecretID
# included. SecretIDs are random and single use, so lockout protects nothing there; it only hands anyone who saw the
# user-data a way to keep the agent from ever logging in. (Kubernetes auth has no user lockout.)
"$BAO" auth tune -user-lockout-disable=true approle/ >/dev/null

"$BAO" policy write lobstack-orchestrator "$HERE/policies/orchestrator.hcl"
"$BAO" policy write lobstack-codec-server "$HERE/policies/codec-server.hcl"

# The payload codec's key-encryption key (connection/codec.py); data keys are made from it with
# `transit/datakey/plaintext/lobstack-codec` by an operator, never by the service.
"$BAO" read transit/keys/lobstack-codec >/dev/null 2>&1 || "$BAO" write -f transit/keys/lobstack-codec type=aes256-gcm96 >/dev/null

if [ -n "${KUBERNETES_HOST:-}" ]; then
    "$BAO" write auth/kubernetes/config kubernetes_host="$KUBERNETES_HOST"
    "$BAO" write auth/kubernetes/role/lobstack-worker \
        bound_service_account_names=lobstack-worker bound_service_account_namespaces=lobstack \
        audience=openbao token_policies=lobstack-orchestrator token_no_default_policy=true token_period=24h
    "$BAO" write auth/kubernetes/role/lobstack-codec-server \
        bound_service_account_names=lobstack-codec-server bound_service_account_namespaces=lobstack \
        audience=openbao token_policies=lobstack-codec-server token_no_default_policy=true token_period=24h
fi

if [ -n "${LOBSTACK_ORCHESTRATOR_TOKEN_ID:-}" ]; then
    "$BAO" token lookup "$LOBSTACK_ORCHESTRATOR_TOKEN_ID" >/dev/null 2>&1 ||
        "$BAO" token create -id="$LOBSTACK_ORCHESTRATOR_TOKEN_ID" -policy=lobstack-orchestrator \
            -no-default-policy -orphan -period=24h -display-name=lobstack-orchestrator >/dev/null
fi
echo "lobstack vault bootstrap: done"
