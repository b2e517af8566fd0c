# OpenBao HA node 1 of 3 (StatefulSet openbao in namespace vault): integrated Raft storage, TLS everywhere, a
# declarative file audit device on its own persistent volume. Same file on every node but node_id and addresses.
ui            = false
disable_mlock = true
api_addr      = "https://openbao-1.openbao-internal.vault.svc:8200"
cluster_addr  = "https://openbao-1.openbao-internal.vault.svc:8201"

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file   = "/openbao/tls/tls.crt"
  tls_key_file    = "/openbao/tls/tls.key"
  tls_min_version = "tls12"
}

storage "raft" {
  path    = "/openbao/data"
  node_id = "openbao-1"

  retry_join {
    leader_api_addr         = "https://openbao-0.openbao-internal.vault.svc:8200"
    leader_ca_cert_file     = "/openbao/tls/ca.crt"
    leader_client_cert_file = "/openbao/tls/tls.crt"
    leader_client_key_file  = "/openbao/tls/tls.key"
  }

  retry_join {
    leader_api_addr         = "https://openbao-2.openbao-internal.vault.svc:8200"
    leader_ca_cert_file     = "/openbao/tls/ca.crt"
    leader_client_cert_file = "/openbao/tls/tls.crt"
    leader_client_key_file  = "/openbao/tls/tls.key"
  }
}

# Unseal: Shamir shares (bao operator init -key-shares=5 -key-threshold=3, one share per operator); a cloud KMS seal
# replaces them per deployment (not defined here).

# Every request and response, HMAC'd, to the audit volume (PVC openbao-audit-openbao-1). The volume's StorageClass
# keeps it (reclaimPolicy Retain); retention is two years (deploy/README.md, "Audit retention").
audit "file" "file" {
  description = "Lobstack audit trail, retained 2 years"
  options {
    file_path = "/openbao/audit/audit.log"
    mode      = "0600"
  }
}
