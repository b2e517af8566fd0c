# OpenBao agent beside the worker (a native sidecar): logs in with the pod's projected service-account token
# (Kubernetes auth role lobstack-worker -> policy lobstack-orchestrator), keeps that periodic token renewed, and
# writes it to an in-memory volume the worker reads VAULT_TOKEN from at start.
pid_file = "/tmp/bao-agent.pid"
exit_after_auth = false

vault {
  address = "https://openbao.vault.svc:8200"
  ca_cert = "/vault/tls/ca.crt"
}

auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role       = "lobstack-worker"
      token_path = "/var/run/secrets/vault/token"
    }
  }

  sink "file" {
    config = {
      path = "/vault/token/token"
      mode = 256
    }
  }
}
