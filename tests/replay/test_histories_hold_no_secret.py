"""The committed histories hold no plaintext payload of ours and nothing that looks like a credential (invariant 1).

Every payload must be sealed by the codec under the TEST-ONLY key, except what Temporal itself writes in plain text
and never passes through a codec: its patch markers and the indexed search attributes, both listed here by name so a
new one is a decision. Then, decrypted, no payload may carry a Vault token, a Transit ciphertext or a field named
like a credential holding text: workflows carry references, counts and names only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from connection.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec
from tests.replay.codec_test_key import TEST_ONLY_KEY_ID, recording_converter
from tests.replay.recorded import Recorded, recorded

RECORDED = recorded()

# Temporal writes these in plain text whatever the codec: `workflow.patched` markers ...
PATCH_MARKER = "core_patch"
# ... and search attributes, which the server indexes: the approval's state and the patch ids of a run.
PLAIN_SEARCH_ATTRIBUTES = {"LobstackApprovalState", "TemporalChangeVersion"}

_TOKEN_LIKE = [
    re.compile(r"\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}"),  # Vault and OpenBao service, batch, recovery tokens
    re.compile(r"lobstack-orchestrator-[0-9a-f]{16,}"),  # the orchestrator token id the test stacks create
    re.compile(r"vault:v\d+:"),  # Transit ciphertext: stays in the registry, never in a workflow
]
_CREDENTIAL_FIELD = re.compile(r"token|secret_?id|password|passphrase|wrapped|ciphertext|plaintext|credential", re.I)


def _payloads(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every payload of a history document, with where it is; Temporal's own plain ones are left out."""
    if isinstance(node, dict):
        if node.get("markerName") == PATCH_MARKER:
            return
        if isinstance(node.get("metadata"), dict) and "encoding" in node["metadata"]:
            yield path, node
            return
        for key, value in node.items():
            if key == "indexedFields" and isinstance(value, dict):
                unknown = set(value) - PLAIN_SEARCH_ATTRIBUTES
                assert not unknown, f"{path}: search attributes {sorted(unknown)} are stored in plain text; review"
                continue
            yield from _payloads(value, f"{path}.{key}")
    elif isinstance(node, list):
        for value in node:
            yield from _payloads(value, path)


def _payload(raw: dict[str, Any]) -> Payload:
    metadata = {key: base64.b64decode(value) for key, value in raw["metadata"].items()}
    return Payload(metadata=metadata, data=base64.b64decode(raw.get("data", "")))


def _credential_fields(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if _CREDENTIAL_FIELD.search(key) and isinstance(value, str) and value:
                yield key
            yield from _credential_fields(value)
    elif isinstance(node, list):
        for value in node:
            yield from _credential_fields(value)


@pytest.mark.parametrize("run", RECORDED, ids=[run.label for run in RECORDED])
def test_every_payload_is_sealed_with_the_test_key(run: Recorded) -> None:
    found = list(_payloads(run.document()))
    assert found, "no payload found: the check would be vacuous"
    for path, raw in found:
        payload = _payload(raw)
        assert payload.metadata["encoding"] == ENCODING, f"{run.label}{path}: a plaintext payload"
        assert payload.metadata[KEY_ID_METADATA].decode() == TEST_ONLY_KEY_ID, f"{run.label}{path}: another key"


@pytest.mark.parametrize("run", RECORDED, ids=[run.label for run in RECORDED])
def test_nothing_in_a_history_looks_like_a_credential(run: Recorded) -> None:
    codec = recording_converter().payload_codec
    assert isinstance(codec, EncryptionCodec)
    sealed = [_payload(raw) for _, raw in _payloads(run.document())]
    opened = asyncio.run(codec.decode(sealed))
    # Decrypted, each is a payload of the converter's own: the texts below are what the workflows really carried.
    encodings = {payload.metadata["encoding"] for payload in opened}
    assert encodings <= {b"json/plain", b"binary/null"}, f"{run.label}: payloads the key did not open: {encodings}"
    decoded = [payload.data.decode("utf-8", errors="replace") for payload in opened]
    for text in [run.path.read_text(), *decoded]:
        for pattern in _TOKEN_LIKE:
            match = pattern.search(text)
            assert match is None, f"{run.label}: holds {match.group(0)[:12]!r}..., which looks like a credential"
    for text in decoded:
        try:
            message = json.loads(text)
        except ValueError:
            continue
        fields = sorted(set(_credential_fields(message)))
        assert not fields, f"{run.label}: a payload carries text in credential-like fields {fields}"
