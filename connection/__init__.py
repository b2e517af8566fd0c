"""How every process of one deployment reaches Temporal: its address and namespace (`connection.settings`) and the
payload codec they must all share (`connection.codec`: AES-256-GCM, keys from configuration or Vault Transit), and
the socket every HTTP server of ours listens on (`connection.listening`).

Below the worker and the gateway on purpose: both connect the same way, and neither imports the other.
"""

from connection.codec import CodecConfigError, CodecError, Keyring, data_converter, data_converter_from_env
from connection.settings import TemporalSettings

__all__ = [
    "CodecConfigError",
    "CodecError",
    "Keyring",
    "TemporalSettings",
    "data_converter",
    "data_converter_from_env",
]
