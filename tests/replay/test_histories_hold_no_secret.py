"""The committed histories hold no plaintext payload of ours and nothing that looks like a credential (invariant 1).

Every payload must be sealed by the codec under the TEST-ONLY key, except what Temporal itself writes in plain text
and never passes through a codec (tests/replay/sealing.py lists them). Then, decrypted, no payload may carry a Vault
token, a Transit ciphertext or a field named like a credential holding text: workflows carry references, counts and
names only.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from connection.codec import EncryptionCodec
from tests.replay.codec_test_key import recording_converter
from tests.replay.recorded import Recorded, recorded
from tests.replay.sealing import payloads, unsealed

RECORDED = recorded()

_TOKEN_LIKE = [
    re.compile(r"\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}"),  # Vault and OpenBao service, batch, recovery tokens
    re.compile(r"lobstack-orchestrator-[0-9a-f]{16,}"),  # the orchestrator token id the test stacks create
    re.compile(r"vault:v\d+:"),  # Transit ciphertext: stays in the registry, never in a workflow
]
_CREDENTIAL_FIELD = re.compile(r"token|secret_?id|password|passphrase|wrapped|ciphertext|plaintext|credential", re.I)


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
    document = run.document()
    assert list(payloads(document)), "no payload found: the check would be vacuous"
    assert unsealed(document) == [], f"{run.label}: payloads not sealed with the test key"


@pytest.mark.parametrize("run", RECORDED, ids=[run.label for run in RECORDED])
def test_nothing_in_a_history_looks_like_a_credential(run: Recorded) -> None:
    codec = recording_converter().payload_codec
    assert isinstance(codec, EncryptionCodec)
    sealed = [payload for _, payload in payloads(run.document())]
    opened = asyncio.run(codec.decode(sealed))
    # Decrypted, each is a payload of the converter's own: the texts below are what the workflows really carried.
    encodings = {payload.metadata["encoding"] for payload in opened}
    assert encodings <= {b"json/plain", b"binary/null"}, f"{run.label}: payloads the key did not open: {encodings}"
    decoded = [payload.data.decode("utf-8", errors="replace") for payload in opened]
    for text in [run.path.read_text(), *decoded]:
        for pattern in _TOKEN_LIKE:
            match = pattern.search(text)
            # Where, and which kind, never the string itself: it may be a live credential.
            assert match is None, f"{run.label}: a credential-like string at offset {match.start()} ({pattern.pattern})"
    for text in decoded:
        try:
            message = json.loads(text)
        except ValueError:
            continue
        fields = sorted(set(_credential_fields(message)))
        assert not fields, f"{run.label}: a payload carries text in credential-like fields {fields}"
