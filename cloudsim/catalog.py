"""What each simulated provider offers: locations, plans and images, with the spec-shaped objects the APIs embed.

Broader than contracts/regions.py on purpose, so a typo'd or retired name is refused the way the real API does.
Prices are real-looking list prices (Hetzner in EUR before and after 19 % VAT, per location; DigitalOcean and Vultr in
USD), and each plan says where it is offered, so a size a location does not offer is refused the way the real API does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# Hetzner: name -> (id, description, country, city, latitude, longitude, network_zone)
HETZNER_LOCATIONS: dict[str, tuple[int, str, str, str, float, float, str]] = {
    "fsn1": (1, "Falkenstein DC Park 1", "DE", "Falkenstein", 50.47612, 12.370071, "eu-central"),
    "nbg1": (2, "Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "eu-central"),
    "hel1": (3, "Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "eu-central"),
    "ash": (4, "Ashburn, VA", "US", "Ashburn, VA", 39.043757, -77.487442, "us-east"),
    "hil": (5, "Hillsboro, OR", "US", "Hillsboro, OR", 45.54222, -122.95194, "us-west"),
    "sin": (6, "Singapore", "SG", "Singapore", 1.283333, 103.833333, "ap-southeast"),
}
# Hetzner: name -> (id, cores, memory GB, disk GB, cpu_type, architecture)
HETZNER_SERVER_TYPES: dict[str, tuple[int, int, float, int, str, str]] = {
    "cpx11": (22, 2, 2.0, 40, "shared", "x86"),
    "cpx21": (23, 3, 4.0, 80, "shared", "x86"),
    "cpx31": (24, 4, 8.0, 160, "shared", "x86"),
    "cpx41": (25, 8, 16.0, 240, "shared", "x86"),
    "cpx51": (26, 16, 32.0, 360, "shared", "x86"),
    "cx22": (104, 2, 4.0, 40, "shared", "x86"),
    "cx32": (105, 4, 8.0, 80, "shared", "x86"),
    "cax11": (45, 2, 4.0, 40, "shared", "arm"),
    "ccx13": (96, 2, 8.0, 80, "dedicated", "x86"),
}
# cx and cax are offered in the EU only.
HETZNER_EU_ONLY_PREFIXES = ("cx", "cax")
# Server types a location does not offer beyond that rule (Singapore started with the smaller shared types only).
HETZNER_NOT_OFFERED: dict[str, frozenset[str]] = {"sin": frozenset({"cpx31", "cpx41", "cpx51", "ccx13"})}
# Monthly price before VAT in the EU locations, EUR; other network zones cost more (`HETZNER_ZONE_SURCHARGE`).
HETZNER_MONTHLY_NET_EUR: dict[str, Decimal] = {
    "cpx11": Decimal("4.35"),
    "cpx21": Decimal("7.55"),
    "cpx31": Decimal("13.60"),
    "cpx41": Decimal("25.20"),
    "cpx51": Decimal("54.90"),
    "cx22": Decimal("3.79"),
    "cx32": Decimal("6.80"),
    "cax11": Decimal("3.79"),
    "ccx13": Decimal("12.49"),
}
HETZNER_ZONE_SURCHARGE: dict[str, Decimal] = {
    "eu-central": Decimal("1"),
    "us-east": Decimal("1.15"),
    "us-west": Decimal("1.15"),
    "ap-southeast": Decimal("1.25"),
}
HETZNER_VAT_RATE = Decimal("19.00")
# Traffic included per month (bytes) and the price per extra TB, EU / elsewhere.
HETZNER_INCLUDED_TRAFFIC = {"eu-central": 20 * 1024**4, "other": 1 * 1024**4}
HETZNER_PER_TB_EUR = {"eu-central": Decimal("1.00"), "other": Decimal("7.40")}
# Datacenter names, one per location.
HETZNER_DATACENTERS: dict[str, str] = {
    "fsn1": "fsn1-dc14",
    "nbg1": "nbg1-dc3",
    "hel1": "hel1-dc2",
    "ash": "ash-dc1",
    "hil": "hil-dc1",
    "sin": "sin-dc1",
}
HETZNER_IMAGES: dict[str, tuple[int, str, str]] = {
    "ubuntu-24.04": (161547269, "Ubuntu 24.04", "24.04"),
    "ubuntu-22.04": (67794396, "Ubuntu 22.04", "22.04"),
    "debian-12": (114690387, "Debian 12", "12"),
}

DO_REGIONS: dict[str, str] = {
    "nyc1": "New York 1",
    "nyc3": "New York 3",
    "sfo2": "San Francisco 2",
    "sfo3": "San Francisco 3",
    "ams3": "Amsterdam 3",
    "fra1": "Frankfurt 1",
    "lon1": "London 1",
    "tor1": "Toronto 1",
    "blr1": "Bangalore 1",
    "sgp1": "Singapore 1",
    "syd1": "Sydney 1",
}
# slug -> (memory MB, vcpus, disk GB, price_monthly USD)
DO_SIZES: dict[str, tuple[int, int, int, float]] = {
    "s-1vcpu-512mb-10gb": (512, 1, 10, 4.0),
    "s-1vcpu-1gb": (1024, 1, 25, 6.0),
    "s-1vcpu-2gb": (2048, 1, 50, 12.0),
    "s-2vcpu-2gb": (2048, 2, 60, 18.0),
    "s-2vcpu-4gb": (4096, 2, 80, 24.0),
    "s-4vcpu-8gb": (8192, 4, 160, 48.0),
    "s-8vcpu-16gb": (16384, 8, 320, 96.0),
}
# Transfer included per month, TB.
DO_TRANSFER: dict[str, float] = {
    "s-1vcpu-512mb-10gb": 0.5,
    "s-1vcpu-1gb": 1.0,
    "s-1vcpu-2gb": 2.0,
    "s-2vcpu-2gb": 3.0,
    "s-2vcpu-4gb": 4.0,
    "s-4vcpu-8gb": 5.0,
    "s-8vcpu-16gb": 6.0,
}
# Regions a size is not offered in (every other region offers it).
DO_NOT_OFFERED: dict[str, frozenset[str]] = {
    "s-1vcpu-512mb-10gb": frozenset({"nyc3", "sfo2", "lon1", "tor1", "blr1", "sgp1", "syd1"}),
    "s-8vcpu-16gb": frozenset({"blr1", "syd1"}),
}
# DigitalOcean bills at most 672 hours a month: its hourly price is the monthly one over 672.
DO_HOURS_PER_MONTH = 672
DO_IMAGES: dict[str, tuple[int, str, str]] = {
    "ubuntu-24-04-x64": (160232537, "24.04 (LTS) x64", "Ubuntu"),
    "ubuntu-22-04-x64": (129211873, "22.04 (LTS) x64", "Ubuntu"),
    "debian-12-x64": (145488624, "12 x64", "Debian"),
}

VULTR_REGIONS: dict[str, str] = {
    "ewr": "New Jersey",
    "atl": "Atlanta",
    "ord": "Chicago",
    "sea": "Seattle",
    "lax": "Los Angeles",
    "fra": "Frankfurt",
    "ams": "Amsterdam",
    "sto": "Stockholm",
    "lhr": "London",
    "sgp": "Singapore",
    "nrt": "Tokyo",
}
# region id -> (country, continent)
VULTR_REGION_PLACES: dict[str, tuple[str, str]] = {
    "ewr": ("US", "North America"),
    "atl": ("US", "North America"),
    "ord": ("US", "North America"),
    "sea": ("US", "North America"),
    "lax": ("US", "North America"),
    "fra": ("DE", "Europe"),
    "ams": ("NL", "Europe"),
    "sto": ("SE", "Europe"),
    "lhr": ("GB", "Europe"),
    "sgp": ("SG", "Asia"),
    "nrt": ("JP", "Asia"),
}
# plan id -> (vcpu_count, ram MB, disk GB, bandwidth GB)
VULTR_PLANS: dict[str, tuple[int, int, int, int]] = {
    "vc2-1c-1gb": (1, 1024, 25, 1024),
    "vc2-1c-2gb": (1, 2048, 55, 2048),
    "vc2-2c-4gb": (2, 4096, 80, 3072),
    "vc2-4c-8gb": (4, 8192, 160, 4096),
    "vc2-6c-16gb": (6, 16384, 320, 5120),
}
# plan id -> monthly_cost, USD (the document types it as an integer)
VULTR_MONTHLY_COST: dict[str, int] = {
    "vc2-1c-1gb": 5,
    "vc2-1c-2gb": 10,
    "vc2-2c-4gb": 20,
    "vc2-4c-8gb": 40,
    "vc2-6c-16gb": 80,
}
# Regions a plan is not offered in (every other region offers it).
VULTR_NOT_OFFERED: dict[str, frozenset[str]] = {"vc2-6c-16gb": frozenset({"sto", "nrt"})}
VULTR_OS: dict[int, str] = {
    2284: "Ubuntu 24.04 LTS x64",
    1743: "Ubuntu 22.04 LTS x64",
    2136: "Debian 12 x64 (bookworm)",
}


def hetzner_location(name: str) -> dict[str, Any]:
    loc_id, description, country, city, lat, lon, zone = HETZNER_LOCATIONS[name]
    return {
        "id": loc_id,
        "name": name,
        "description": description,
        "country": country,
        "city": city,
        "latitude": lat,
        "longitude": lon,
        "network_zone": zone,
    }


def hetzner_server_type(name: str) -> dict[str, Any]:
    type_id, cores, memory, disk, cpu_type, arch = HETZNER_SERVER_TYPES[name]
    return {
        "id": type_id,
        "name": name,
        "description": name.upper(),
        "cores": cores,
        "memory": memory,
        "disk": disk,
        "deprecated": False,
        "deprecation": None,
        "prices": hetzner_prices(name),
        "storage_type": "local",
        "cpu_type": cpu_type,
        "category": "cost_optimized" if name.startswith(HETZNER_EU_ONLY_PREFIXES) else "regular_purpose",
        "architecture": arch,
        "locations": [
            {
                "id": HETZNER_LOCATIONS[location][0],
                "name": location,
                "deprecation": None,
                "recommended": True,
                "available": True,
            }
            for location in HETZNER_LOCATIONS
            if hetzner_server_type_offered(name, location)
        ],
    }


def hetzner_server_type_offered(server_type: str, location: str) -> bool:
    if server_type in HETZNER_NOT_OFFERED.get(location, frozenset()):
        return False
    eu = HETZNER_LOCATIONS[location][6] == "eu-central"
    return eu or not server_type.startswith(HETZNER_EU_ONLY_PREFIXES)


def hetzner_amount(net: Decimal) -> dict[str, str]:
    """Hetzner's price object: strings, net with 10 decimals and gross (with VAT) with 16, as its API writes them."""
    gross = net * (1 + HETZNER_VAT_RATE / 100)
    return {"net": f"{net:.10f}", "gross": f"{gross:.16f}"}


def hetzner_monthly_net(server_type: str, location: str) -> Decimal:
    zone = HETZNER_LOCATIONS[location][6]
    return (HETZNER_MONTHLY_NET_EUR[server_type] * HETZNER_ZONE_SURCHARGE[zone]).quantize(Decimal("0.01"))


def hetzner_prices(server_type: str) -> list[dict[str, Any]]:
    """One price entry per location offering the type (the API lists prices only where the type is sold)."""
    prices = []
    for location, fields in HETZNER_LOCATIONS.items():
        if not hetzner_server_type_offered(server_type, location):
            continue
        zone = "eu-central" if fields[6] == "eu-central" else "other"
        monthly = hetzner_monthly_net(server_type, location)
        prices.append(
            {
                "location": location,
                "price_hourly": hetzner_amount((monthly / 672).quantize(Decimal("0.0001"))),
                "price_monthly": hetzner_amount(monthly),
                "included_traffic": HETZNER_INCLUDED_TRAFFIC[zone],
                "price_per_tb_traffic": hetzner_amount(HETZNER_PER_TB_EUR[zone]),
            }
        )
    return prices


def hetzner_image(name: str) -> dict[str, Any]:
    image_id, description, version = HETZNER_IMAGES[name]
    return {
        "id": image_id,
        "type": "system",
        "status": "available",
        "name": name,
        "description": description,
        "image_size": None,
        "disk_size": 5,
        "created": "2024-04-25T00:00:00+00:00",
        "created_from": None,
        "bound_to": None,
        "os_flavor": name.split("-", 1)[0],
        "os_version": version,
        "rapid_deploy": True,
        "protection": {"delete": False},
        "deprecated": None,
        "deleted": None,
        "labels": {},
        "architecture": "x86",
    }


def hetzner_datacenter(location: str) -> dict[str, Any]:
    loc = hetzner_location(location)
    offered = [t[0] for name, t in HETZNER_SERVER_TYPES.items() if hetzner_server_type_offered(name, location)]
    return {
        "id": loc["id"],
        "name": HETZNER_DATACENTERS[location],
        "description": f"{loc['description']} DC",
        "location": loc,
        "server_types": {"supported": offered, "available": offered, "available_for_migration": offered},
    }


def hetzner_pricing() -> dict[str, Any]:
    """`GET /pricing`: every price of the project, in its currency."""

    def per_location(monthly: Decimal) -> list[dict[str, Any]]:
        return [{"location": loc, "price_monthly": hetzner_amount(monthly)} for loc in HETZNER_LOCATIONS]

    return {
        "currency": "EUR",
        "vat_rate": f"{HETZNER_VAT_RATE:.2f}",
        "primary_ips": [
            {
                "type": "ipv4",
                "prices": [
                    {
                        "location": loc,
                        "price_hourly": hetzner_amount(Decimal("0.0008")),
                        "price_monthly": hetzner_amount(Decimal("0.50")),
                    }
                    for loc in HETZNER_LOCATIONS
                ],
            }
        ],
        "floating_ips": [{"type": "ipv4", "prices": per_location(Decimal("3.00"))}],
        "floating_ip": {"price_monthly": hetzner_amount(Decimal("3.00"))},
        "image": {"price_per_gb_month": hetzner_amount(Decimal("0.0110"))},
        "volume": {"price_per_gb_month": hetzner_amount(Decimal("0.0440"))},
        "server_backup": {"percentage": "20.00"},
        "server_types": [
            {"id": HETZNER_SERVER_TYPES[name][0], "name": name, "prices": hetzner_prices(name)}
            for name in HETZNER_SERVER_TYPES
        ],
        "load_balancer_types": [],
    }


def do_size_regions(slug: str) -> list[str]:
    return [region for region in DO_REGIONS if region not in DO_NOT_OFFERED.get(slug, frozenset())]


def do_region(slug: str) -> dict[str, Any]:
    return {
        "name": DO_REGIONS[slug],
        "slug": slug,
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
        "available": True,
        "sizes": [size for size in DO_SIZES if slug in do_size_regions(size)],
    }


def do_size(slug: str) -> dict[str, Any]:
    memory, vcpus, disk, price = DO_SIZES[slug]
    return {
        "slug": slug,
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "transfer": DO_TRANSFER[slug],
        "price_monthly": price,
        "price_hourly": round(price / DO_HOURS_PER_MONTH, 5),
        "regions": do_size_regions(slug),
        "available": True,
        "description": "Basic",
        "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}],
    }


def do_image(slug: str) -> dict[str, Any]:
    image_id, image_name, distribution = DO_IMAGES[slug]
    return {
        "id": image_id,
        "name": image_name,
        "distribution": distribution,
        "slug": slug,
        "public": True,
        "regions": list(DO_REGIONS),
        "created_at": "2024-04-25T00:00:00Z",
        "type": "base",
        "min_disk_size": 7,
        "size_gigabytes": 2.36,
        "description": "",
        "tags": [],
        "status": "available",
        "error_message": "",
    }


def vultr_plan_locations(plan_id: str) -> list[str]:
    return [region for region in VULTR_REGIONS if region not in VULTR_NOT_OFFERED.get(plan_id, frozenset())]


def vultr_region(region: str) -> dict[str, Any]:
    country, continent = VULTR_REGION_PLACES[region]
    return {
        "id": region,
        "city": VULTR_REGIONS[region],
        "country": country,
        "continent": continent,
        "options": ["ddos_protection", "block_storage_high_perf"],
    }


def vultr_plan(plan_id: str) -> dict[str, Any]:
    vcpus, ram, disk, bandwidth = VULTR_PLANS[plan_id]
    return {
        "id": plan_id,
        "name": plan_id,
        "vcpu_count": vcpus,
        "ram": ram,
        "disk": disk,
        "disk_count": 1,
        "bandwidth": bandwidth,
        "monthly_cost": VULTR_MONTHLY_COST[plan_id],
        "type": "vc2",
        "locations": vultr_plan_locations(plan_id),
    }


def vultr_os(os_id: int) -> dict[str, Any]:
    name = VULTR_OS[os_id]
    return {"id": os_id, "name": name, "arch": "x64", "family": name.split()[0].lower()}
