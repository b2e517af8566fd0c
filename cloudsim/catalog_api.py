"""The catalog endpoints of the three simulated APIs: where each provider sells what, and at which price.

    Hetzner       /locations /server_types /images /datacenters /pricing   page, per_page (25, max 50),
                                                                           meta.pagination and a `Link` header
    DigitalOcean  /v2/regions /v2/sizes /v2/images                        page, per_page (20, max 200), links.pages
    Vultr         /regions /plans /os                                      per_page (100, max 500), cursor, meta.links

`build_app` adds these routes through each provider's `ProviderAPI.route`, so catalog calls are counted, rate limited
and faulted like any other, under the endpoint key `catalog`. The data and the objects' shapes live in
`cloudsim.catalog`.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from cloudsim import catalog
from cloudsim.pipeline import Handler, ProviderAPI
from cloudsim.vultr import decode_cursor, encode_cursor

CATALOG_KEY = "catalog"
HETZNER_MAX_PER_PAGE = 50
DO_MAX_PER_PAGE = 200
VULTR_MAX_PER_PAGE = 500

Render = Callable[[], list[dict[str, Any]]]


# --- Hetzner ---------------------------------------------------------------------------------------------------------


def hetzner_routes(api: ProviderAPI) -> list[BaseRoute]:
    lists: dict[str, Render] = {
        "locations": lambda: [catalog.hetzner_location(name) for name in catalog.HETZNER_LOCATIONS],
        "server_types": lambda: [catalog.hetzner_server_type(name) for name in catalog.HETZNER_SERVER_TYPES],
        "images": lambda: [catalog.hetzner_image(name) for name in catalog.HETZNER_IMAGES],
        "datacenters": lambda: [catalog.hetzner_datacenter(name) for name in catalog.HETZNER_LOCATIONS],
    }
    routes: list[BaseRoute] = [
        api.route(f"/{key}", CATALOG_KEY, _hetzner_list(api, key, render), ["GET"]) for key, render in lists.items()
    ]

    async def pricing(_request: Request) -> Response:
        return JSONResponse({"pricing": catalog.hetzner_pricing()})

    routes.append(api.route("/pricing", CATALOG_KEY, pricing, ["GET"]))
    return routes


def _hetzner_list(api: ProviderAPI, key: str, render: Render) -> Handler:
    async def handler(request: Request) -> Response:
        params = request.query_params
        items = render()
        if params.get("name"):
            items = [item for item in items if item.get("name") == params["name"]]
        page, per_page = params.get("page", "1"), params.get("per_page", "25")
        if not page.isdigit() or int(page) < 1:
            return _hetzner_invalid(api, "page", "must be an integer of at least 1")
        if not per_page.isdigit() or not 1 <= int(per_page) <= HETZNER_MAX_PER_PAGE:
            return _hetzner_invalid(api, "per_page", f"must be an integer from 1 to {HETZNER_MAX_PER_PAGE}")
        chunk, pagination = _pages(items, int(page), int(per_page))
        body: dict[str, Any] = {key: chunk, "meta": {"pagination": pagination}}
        if key == "datacenters":
            body["recommendation"] = catalog.HETZNER_LOCATIONS["fsn1"][0]
        response = JSONResponse(body)
        links = _hetzner_links(request, pagination)
        if links:
            response.headers["Link"] = links
        return response

    return handler


def _hetzner_invalid(api: ProviderAPI, field: str, message: str) -> JSONResponse:
    details = {"fields": [{"name": field, "messages": [message]}]}
    # The document's status for invalid_input is 422.
    return api.error(422, f"invalid input in field '{field}': {message}", "invalid_input", details)


def _pages(items: Sequence[dict[str, Any]], page: int, per_page: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    last = max(1, math.ceil(len(items) / per_page))
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last else None,
        "last_page": last,
        "total_entries": len(items),
    }
    return list(items[(page - 1) * per_page : page * per_page]), pagination


def _hetzner_links(request: Request, pagination: dict[str, Any]) -> str:
    """`Link: <url?page=2&per_page=5>; rel="prev", ...` as the Pagination section of the document shows it."""
    per_page = pagination["per_page"]
    rels = {
        "prev": pagination["previous_page"],
        "next": pagination["next_page"],
        "last": pagination["last_page"] if pagination["page"] != pagination["last_page"] else None,
    }
    return ", ".join(
        f'<{request.url.include_query_params(page=page, per_page=per_page)}>; rel="{rel}"'
        for rel, page in rels.items()
        if page is not None
    )


# --- DigitalOcean ----------------------------------------------------------------------------------------------------


def digitalocean_routes(api: ProviderAPI) -> list[BaseRoute]:
    lists: dict[str, Render] = {
        "regions": lambda: [catalog.do_region(slug) for slug in catalog.DO_REGIONS],
        "sizes": lambda: [catalog.do_size(slug) for slug in catalog.DO_SIZES],
        "images": lambda: [catalog.do_image(slug) for slug in catalog.DO_IMAGES],
    }
    routes: list[BaseRoute] = []
    for key, render in lists.items():
        handler = _do_list(api, key, render)
        # python-digitalocean asks for `sizes/`, the document says `/v2/sizes`: both are served.
        routes.append(api.route(f"/{key}", CATALOG_KEY, handler, ["GET"]))
        routes.append(api.route(f"/{key}/", CATALOG_KEY, handler, ["GET"]))
    return routes


def _do_list(api: ProviderAPI, key: str, render: Render) -> Handler:
    async def handler(request: Request) -> Response:
        params = request.query_params
        items = render()
        if key == "images" and params.get("type") == "application":
            items = []  # every simulated image is a distribution
        try:
            page = max(1, int(params.get("page", 1)))
            per_page = min(max(1, int(params.get("per_page", 20))), DO_MAX_PER_PAGE)
        except ValueError:
            return api.error(400, "page and per_page must be integers")
        last = max(1, math.ceil(len(items) / per_page))
        pages: dict[str, str] = {}
        if page > 1:
            pages["first"] = str(request.url.include_query_params(page=1, per_page=per_page))
            pages["prev"] = str(request.url.include_query_params(page=page - 1, per_page=per_page))
        if page < last:
            pages["next"] = str(request.url.include_query_params(page=page + 1, per_page=per_page))
            pages["last"] = str(request.url.include_query_params(page=last, per_page=per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        return JSONResponse({key: chunk, "links": {"pages": pages}, "meta": {"total": len(items)}})

    return handler


# --- Vultr -----------------------------------------------------------------------------------------------------------


def vultr_routes(api: ProviderAPI) -> list[BaseRoute]:
    lists: dict[str, Render] = {
        "regions": lambda: [catalog.vultr_region(region) for region in catalog.VULTR_REGIONS],
        "plans": lambda: [catalog.vultr_plan(plan) for plan in catalog.VULTR_PLANS],
        "os": lambda: [catalog.vultr_os(os_id) for os_id in catalog.VULTR_OS],
    }
    return [api.route(f"/{key}", CATALOG_KEY, _vultr_list(api, key, render), ["GET"]) for key, render in lists.items()]


def _vultr_list(api: ProviderAPI, key: str, render: Render) -> Handler:
    async def handler(request: Request) -> Response:
        params = request.query_params
        items = render()
        if key == "plans" and params.get("type") not in (None, "", "all", "vc2"):
            items = []  # every simulated plan is Cloud Compute (vc2)
        try:
            per_page = min(max(1, int(params.get("per_page", 100))), VULTR_MAX_PER_PAGE)
            offset = decode_cursor(params["cursor"]) if params.get("cursor") else 0
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return api.error(400, "Invalid cursor or per_page.")
        links = {
            "next": encode_cursor(offset + per_page) if offset + per_page < len(items) else "",
            "prev": encode_cursor(max(0, offset - per_page)) if offset > 0 else "",
        }
        chunk = items[offset : offset + per_page]
        return JSONResponse({key: chunk, "meta": {"total": len(items), "links": links}})

    return handler


def catalog_routes(apis: dict[str, ProviderAPI]) -> list[BaseRoute]:
    builders = {"hetzner": hetzner_routes, "digitalocean": digitalocean_routes, "vultr": vultr_routes}
    return [route for name, api in apis.items() for route in builders[name](api)]


__all__ = ["CATALOG_KEY", "catalog_routes", "digitalocean_routes", "hetzner_routes", "vultr_routes"]
