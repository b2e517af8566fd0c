"""Which payloads of a recorded history the codec must have sealed, and whether it did.

Temporal writes two kinds of payload in plain text whatever the codec, both listed here by name so that a new one is a
decision: its `workflow.patched` markers, and the search attributes the server indexes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from temporalio.api.common.v1 import Payload

from connection.codec import ENCODING, KEY_ID_METADATA
from tests.replay.codec_test_key import TEST_ONLY_KEY_ID
from workflows.search_attributes import APPROVAL_KEYS

__all__ = ["PATCH_MARKER", "PLAIN_SEARCH_ATTRIBUTES", "payloads", "unsealed"]

PATCH_MARKER = "core_patch"
# What finds an approval in the Web UI's list (ids, states and a deadline, never secrets) and the patch ids a run
# went through.
PLAIN_SEARCH_ATTRIBUTES = {key.name for key in APPROVAL_KEYS} | {"TemporalChangeVersion"}


def payloads(document: Any, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every payload of a history document that the codec must seal, with where it is in the document."""
    if isinstance(document, dict):
        if document.get("markerName") == PATCH_MARKER:
            return
        if isinstance(document.get("metadata"), dict) and "encoding" in document["metadata"]:
            metadata = {key: base64.b64decode(value) for key, value in document["metadata"].items()}
            yield path, Payload(metadata=metadata, data=base64.b64decode(document.get("data", "")))
            return
        for key, value in document.items():
            if key == "indexedFields" and isinstance(value, dict):
                unknown = set(value) - PLAIN_SEARCH_ATTRIBUTES
                assert not unknown, f"{path}: search attributes {sorted(unknown)} are stored in plain text; review"
                continue
            yield from payloads(value, f"{path}.{key}")
    elif isinstance(document, list):
        for value in document:
            yield from payloads(value, path)


def unsealed(document: Any) -> list[str]:
    """Where a payload is not encrypted under the test key; empty when every one is."""
    return [
        f"{path} ({'another key' if payload.metadata['encoding'] == ENCODING else 'plaintext'})"
        for path, payload in payloads(document)
        if payload.metadata["encoding"] != ENCODING
        or payload.metadata.get(KEY_ID_METADATA, b"").decode() != TEST_ONLY_KEY_ID
    ]
