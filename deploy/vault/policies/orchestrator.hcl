# lobstack-orchestrator: the workers' Vault token (activities/secrets). Least privilege for what the code calls, on
# the default mounts secret/ (kv v2), transit/, pki-agents/ and auth/approle/. Mounting engines is an operator step
# (deploy/vault/bootstrap.sh, once, with an admin token); this policy can only read the mount tables to verify them.
# Every name it may touch starts with "agent-" or, for a warm pool VM's identity, "lobstack-pool-pv" (or lives under
# secret/agents/, secret/pool/ for pool claims, or secret/lobstack-webhooks/ for the webhook signing secrets): it can
# never write its own policy, an operator's policy, a non-agent role or the codec key. tests/deploy/test_vault_policies.py pins each path.

# ensure_engines at worker start: verify kv v2, transit, pki and approle are mounted.
path "sys/mounts" {
  capabilities = ["read"]
}

path "sys/auth" {
  capabilities = ["read"]
}

# Per-agent ACL policies (hvac writes them through sys/policy/<name>); listing them feeds the orphan sweep.
path "sys/policy" {
  capabilities = ["read"]
}

path "sys/policy/agent-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Warm pools (activities/secrets/pool_vault.py): one policy and AppRole role per pool VM, lobstack-pool-<slot>.
path "sys/policy/lobstack-pool-pv*" {
  capabilities = ["create", "read", "update", "delete"]
}

# KV v2: the agent's identity is written once (cas=0) and never read back by the service; metadata holds the
# sweep's labels, is listed to find every key of an agent, and deleting it destroys all versions.
path "secret/data/agents/*" {
  capabilities = ["create", "update"]
}

path "secret/metadata/agents/*" {
  capabilities = ["read", "list", "update", "delete"]
}

# A pool VM's claim: written at claim time (a retry overwrites it) and never read back; its metadata is read to verify
# the pool identity is gone, listed by the orphan sweep, and deleting it destroys all versions.
path "secret/data/pool/*" {
  capabilities = ["create", "update"]
}

path "secret/metadata/pool/*" {
  capabilities = ["read", "list", "delete"]
}

# Approval notices: each account's webhook signing secrets (activities/webhooks.py). Written by `lobstack webhooks
# add`, read by the delivery activity only, destroyed with the endpoint.
path "secret/data/lobstack-webhooks/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/lobstack-webhooks/*" {
  capabilities = ["delete"]
}

# Transit: one key per agent (create, config, rotate, delete), agent data encrypt/decrypt, rewrap on rotation.
path "transit/keys" {
  capabilities = ["list"]
}

path "transit/keys/agent-*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "transit/encrypt/agent-*" {
  capabilities = ["update"]
}

path "transit/decrypt/agent-*" {
  capabilities = ["update"]
}

path "transit/rewrap/agent-*" {
  capabilities = ["update"]
}

# The payload codec's data keys (LOBSTACK_CODEC_WRAPPED_KEYS) are unwrapped at worker start; the key itself and new
# data keys are the operator's.
path "transit/decrypt/lobstack-codec" {
  capabilities = ["update"]
}

# AppRole: one role per agent (also covers role-id reads and wrapped secret-id generation under it); listing feeds
# the orphan sweep.
path "auth/approle/role" {
  capabilities = ["list"]
}

path "auth/approle/role/agent-*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "auth/approle/role/lobstack-pool-pv*" {
  capabilities = ["create", "read", "update", "delete"]
}

# PKI: one certificate role per agent, made at mint (it issues that agent's name only) and deleted on destroy; listing
# feeds the orphan sweep. The service never issues a certificate itself and cannot touch the CA.
path "pki-agents/roles" {
  capabilities = ["list"]
}

path "pki-agents/roles/agent-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Destroy finds an agent's tokens by listing accessors (sudo), looks each up once, and revokes them.
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}

path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# Its own token only (issued without the default policy).
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "sys/capabilities-self" {
  capabilities = ["update"]
}
