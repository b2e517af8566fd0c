"""The bridge gateway: bridges authenticate with their own Vault token; the gateway talks to Temporal for them.

A VM never holds Temporal credentials. `create_app(settings)` builds the Starlette app, `serving(settings)` runs it in
the current event loop, `run_gateway(host, port)` is the `lobstack gateway` entry point.
"""

from gateway.app import create_app
from gateway.auth import AgentIdentity, AuthError, VaultAuthenticator
from gateway.server import run_gateway, serving
from gateway.settings import GatewaySettings

__all__ = [
    "AgentIdentity",
    "AuthError",
    "GatewaySettings",
    "VaultAuthenticator",
    "create_app",
    "run_gateway",
    "serving",
]
