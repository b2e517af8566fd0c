"""The TEST-ONLY payload codec key the recorded histories (tests/replay/histories/) are encrypted with.

Committed on purpose: the histories must stay encrypted like a real deployment's (so the committed files hold no
plaintext payload), and the replay test must decrypt them. This key protects nothing; never configure it anywhere else.
"""

from __future__ import annotations

import base64

from temporalio.converter import DataConverter

from connection.codec import CodecKey, Keyring, data_converter

__all__ = ["TEST_ONLY_KEY_ID", "recording_converter"]

TEST_ONLY_KEY_ID = "replay-test-only-key"
_TEST_ONLY_KEY = base64.b64decode("vAIwh+4qR4BAQgw1G+SITZO+eBdjWNmlLrpS8d/LeAU=")


def recording_converter() -> DataConverter:
    """The encrypted converter histories are recorded and replayed with: the deployment's, under the test key."""
    return data_converter(Keyring([CodecKey(TEST_ONLY_KEY_ID, _TEST_ONLY_KEY)]))
