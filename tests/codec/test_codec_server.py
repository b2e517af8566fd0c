"""The codec server over real HTTP (uvicorn): the Web UI's /encode and /decode, bearer auth, CORS for the UI origin."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from connection.codec import ENCODING, EncryptionCodec, Keyring
from workers.codec_server import CodecServerConfigError, create_codec_app, serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "t0ken-for-the-codec-server-tests"
UI = "http://127.0.0.1:8233"
PLAIN = b'{"account_id": "acme-private", "name": "helper"}'


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Keyring]]:
    keyring = Keyring.generate("srv")
    async with serving(keyring, auth_token=[TOKEN], cors_origins=[UI]) as url:
        yield url, keyring


async def encrypted(keyring: Keyring) -> dict[str, object]:
    (p,) = await EncryptionCodec(keyring).encode([Payload(metadata={"encoding": b"json/plain"}, data=PLAIN)])
    return json_format.MessageToDict(Payloads(payloads=[p]))


def ui_headers(token: str | None = TOKEN) -> dict[str, str]:
    headers = {"Origin": UI, "Content-Type": "application/json", "X-Namespace": "default"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_decode_with_valid_token_returns_plaintext(server: tuple[str, Keyring]) -> None:
    url, keyring = server
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{url}/decode", json=await encrypted(keyring), headers=ui_headers())
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == UI
    (p,) = resp.json()["payloads"]
    assert base64.b64decode(p["metadata"]["encoding"]) == b"json/plain"
    assert base64.b64decode(p["data"]) == PLAIN


async def test_without_or_with_a_wrong_token_401(server: tuple[str, Keyring]) -> None:
    url, keyring = server
    body = await encrypted(keyring)
    async with httpx.AsyncClient() as http:
        for headers in (
            ui_headers(None),
            ui_headers("wrong-token-wrong-token"),
            {**ui_headers(), "Authorization": TOKEN},
        ):
            resp = await http.post(f"{url}/decode", json=body, headers=headers)
            assert resp.status_code == 401, headers
            assert "acme-private" not in resp.text
            assert resp.headers["www-authenticate"].startswith("Bearer")
            # The UI must be able to read the refusal, so CORS headers come with it.
            assert resp.headers["access-control-allow-origin"] == UI
        resp = await http.post(f"{url}/encode", json=body, headers=ui_headers(None))
        assert resp.status_code == 401


async def test_cors_preflight_answered_for_the_ui_origin_only(server: tuple[str, Keyring]) -> None:
    url, _ = server
    preflight = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    async with httpx.AsyncClient() as http:
        resp = await http.options(f"{url}/decode", headers=preflight)
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == UI
        assert "POST" in resp.headers["access-control-allow-methods"]
        allowed = resp.headers["access-control-allow-headers"].lower()
        assert {"content-type", "x-namespace", "authorization"} <= {h.strip() for h in allowed.split(",")}

        other = await http.options(f"{url}/decode", headers={**preflight, "Origin": "http://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


async def test_encode_then_decode_and_prefixed_paths(server: tuple[str, Keyring]) -> None:
    url, _ = server
    body = json_format.MessageToDict(Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=PLAIN)]))
    async with httpx.AsyncClient() as http:
        enc = await http.post(f"{url}/default/encode", json=body, headers=ui_headers())
        assert enc.status_code == 200
        (p,) = enc.json()["payloads"]
        assert base64.b64decode(p["metadata"]["encoding"]) == ENCODING and b"acme-private" not in enc.content
        dec = await http.post(f"{url}/default/decode", json=enc.json(), headers=ui_headers())
        assert base64.b64decode(dec.json()["payloads"][0]["data"]) == PLAIN


async def test_unknown_key_and_bad_body_are_400(server: tuple[str, Keyring]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as http:
        foreign = await encrypted(Keyring.generate("elsewhere"))
        resp = await http.post(f"{url}/decode", json=foreign, headers=ui_headers())
        assert resp.status_code == 400 and "elsewhere" in resp.json()["error"]
        resp = await http.post(f"{url}/decode", content=b"not json", headers=ui_headers())
        assert resp.status_code == 400


async def test_configuration_is_refused_when_unsafe() -> None:
    keyring = Keyring.generate()
    with pytest.raises(CodecServerConfigError, match="bearer token"):
        create_codec_app(keyring, auth_token=None)
    with pytest.raises(CodecServerConfigError, match="at least"):
        create_codec_app(keyring, auth_token="short")
    with pytest.raises(CodecServerConfigError, match="cors origin"):
        create_codec_app(keyring, auth_token=TOKEN, cors_origins=["*"])
    with pytest.raises(CodecServerConfigError, match="loopback"):
        async with serving(keyring, host="0.0.0.0", auth_token=None, allow_anonymous=True):
            pass
