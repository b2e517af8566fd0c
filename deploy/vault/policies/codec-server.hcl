# lobstack-codec-server: unwraps the payload codec's data keys at start (LOBSTACK_CODEC_WRAPPED_KEYS); nothing else.
path "transit/decrypt/lobstack-codec" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
