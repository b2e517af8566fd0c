"""What each simulated provider offers: locations, plans and images, with the spec-shaped objects the APIs embed.

Broader than contracts/regions.py on purpose, so a typo'd or retired name is refused the way the real API does.
"""

from __future__ import annotations

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
# slug -> (memory MB, vcpus, disk GB, price_monthly)
DO_SIZES: dict[str, tuple[int, int, int, float]] = {
    "s-1vcpu-512mb-10gb": (512, 1, 10, 4.0),
    "s-1vcpu-1gb": (1024, 1, 25, 6.0),
    "s-1vcpu-2gb": (2048, 1, 50, 12.0),
    "s-2vcpu-2gb": (2048, 2, 60, 18.0),
    "s-2vcpu-4gb": (4096, 2, 80, 24.0),
    "s-4vcpu-8gb": (8192, 4, 160, 48.0),
    "s-8vcpu-16gb": (16384, 8, 320, 96.0),
}
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
# plan id -> (vcpu_count, ram MB, disk GB, bandwidth GB)
VULTR_PLANS: dict[str, tuple[int, int, int, int]] = {
    "vc2-1c-1gb": (1, 1024, 25, 1024),
    "vc2-1c-2gb": (1, 2048, 55, 2048),
    "vc2-2c-4gb": (2, 4096, 80, 3072),
    "vc2-4c-8gb": (4, 8192, 160, 4096),
    "vc2-6c-16gb": (6, 16384, 320, 5120),
}
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
        "prices": [],
        "storage_type": "local",
        "cpu_type": cpu_type,
        "architecture": arch,
        # Required by the spec's Server Type: the locations that offer it (here: those it is orderable in).
        "locations": [
            {"id": loc[0], "name": loc_name, "deprecation": None, "recommended": False, "available": True}
            for loc_name, loc in HETZNER_LOCATIONS.items()
            if hetzner_server_type_offered(name, loc_name)
        ],
    }


def hetzner_server_type_offered(server_type: str, location: str) -> bool:
    eu = HETZNER_LOCATIONS[location][6] == "eu-central"
    return eu or not server_type.startswith(HETZNER_EU_ONLY_PREFIXES)
