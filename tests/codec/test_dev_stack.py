"""The dev stack encrypts with an ephemeral key and points the Temporal Web UI at its codec server."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from devstack.stack import dev_stack
from workers.codec import ENCODING

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_dev_stack_wires_client_ui_and_codec_server(tmp_path: Path) -> None:
    async with dev_stack(tmp_path / "dev") as stack:
        assert stack.codec_url.startswith("http://127.0.0.1:") and stack.codec_key is not None
        assert base64.b64encode(stack.codec_key.material).decode() not in repr(stack)
        assert stack.codec_token not in repr(stack)
        async with httpx.AsyncClient(timeout=10) as http:
            settings = (await http.get(f"{stack.temporal.ui_url}/api/v1/settings")).json()
            assert settings["Codec"]["Endpoint"] == stack.codec_url

            (encoded,) = await stack.client.data_converter.encode([{"account_id": "acme-dev"}])
            assert encoded.metadata["encoding"] == ENCODING
            body = json_format.MessageToDict(Payloads(payloads=[encoded]))
            headers = {"Origin": stack.temporal.ui_url, "X-Namespace": "default"}
            refused = await http.post(f"{stack.codec_url}/decode", json=body, headers=headers)
            assert refused.status_code == 401
            auth = {**headers, "Authorization": f"Bearer {stack.codec_token}"}
            decoded = await http.post(f"{stack.codec_url}/decode", json=body, headers=auth)
            assert decoded.status_code == 200
            assert decoded.headers["access-control-allow-origin"] == stack.temporal.ui_url
            assert b"acme-dev" in base64.b64decode(decoded.json()["payloads"][0]["data"])
