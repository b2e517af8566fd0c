"""`lobstack catalog` reads the providers' catalogs with the credentials in its environment (here cloudsim's), and
`lobstack agent create` refuses a size no placement sells, exit 2 with what is sold, before it connects to anything.

The create cases point the CLI at a closed Temporal port: a spec that passed the catalog check fails there with exit 3
instead, so exit 2 proves the refusal came first.
"""

from __future__ import annotations

import json
import subprocess
import sys

from cloudsim.testing import RunningSim
from devstack import free_port
from tests.clients.cli_run import run

CREATE = ["agent", "create", "--account", "acme", "--name", "helper"]


def create(sim: RunningSim, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = run("--address", f"127.0.0.1:{free_port()}", *CREATE, *extra, env=env if env is not None else sim.env())
    assert "Traceback" not in done.err, done
    return done.code, done.err


def test_catalog_shows_our_sizes_with_monthly_prices_and_what_a_location_does_not_sell(sim: RunningSim) -> None:
    done = run("catalog", "--region", "ap-southeast", env=sim.env())
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert lines[0].split() == ["region", "provider", "location", "size", "plan", "vCPU", "memory", "disk", "monthly"]
    rows = {tuple(line.split()[1:4]): line for line in lines[1:]}
    assert rows[("hetzner", "sin", "small")].endswith("5.44 EUR")
    assert rows[("hetzner", "sin", "large")].endswith("cpx31               not sold here")
    assert rows[("digitalocean", "sgp1", "large")].endswith("48.00 USD")
    assert rows[("vultr", "sgp", "medium")].endswith("20.00 USD")
    assert rows[("local", "local", "small")].endswith("0.00 USD")


def test_catalog_for_one_provider_and_region_as_json_with_its_other_plans(sim: RunningSim) -> None:
    done = run("catalog", "--provider", "vultr", "--region", "eu-north", "--all-plans", "--json", env=sim.env())
    assert done.code == 0, done
    rows = json.loads(done.out)
    assert {row["provider"] for row in rows} == {"vultr"}
    by_plan = {row["plan"]: row for row in rows}
    assert by_plan["vc2-1c-2gb"]["sold"] is True
    assert (by_plan["vc2-1c-2gb"]["size"], by_plan["vc2-1c-2gb"]["monthly_price"]) == ("small", "10.00")
    assert by_plan["vc2-1c-1gb"]["size"] is None  # one of Vultr's other plans
    assert "vc2-6c-16gb" not in by_plan  # not sold in Stockholm


def test_catalog_refuses_bad_values_and_a_provider_without_credentials(sim: RunningSim) -> None:
    for args, field, allowed in (
        (["--region", "mars"], "region", "us-east, us-west"),
        (["--provider", "aws"], "provider", "local, hetzner, digitalocean, vultr"),
    ):
        done = run("catalog", *args, env=sim.env())
        assert done.code == 2 and f"{field}:" in done.err and allowed in done.err, done
    without = {k: v for k, v in sim.env().items() if k != "HCLOUD_TOKEN"}
    done = run("catalog", "--provider", "hetzner", env=without)
    assert done.code == 2 and "needs HCLOUD_TOKEN" in done.err, done


def test_create_refuses_a_size_the_provider_does_not_sell_there_and_lists_what_it_does(sim: RunningSim) -> None:
    code, err = create(sim, "--provider", "hetzner", "--region", "ap-southeast", "--size", "large")
    assert code == 2
    assert "size: large is sold in no location hetzner has for ap-southeast" in err
    assert "hetzner does not offer cpx31 (size large) in sin; it offers there: cpx11 (small)" in err
    assert "cpx21 (medium) 3 vCPU 4 GB 9.44 EUR/month" in err


def test_create_passes_the_check_when_a_placement_sells_the_size(sim: RunningSim) -> None:
    # auto fails over to DigitalOcean's Singapore, which sells it; the command then fails at the closed port.
    code, err = create(sim, "--provider", "auto", "--region", "ap-southeast", "--size", "large")
    assert code == 3 and "cannot reach Temporal" in err
    # Without credentials for the provider the CLI cannot ask: the worker checks at create.
    code, err = create(sim, "--provider", "hetzner", "--region", "ap-southeast", "--size", "large", env={})
    assert code == 3 and "cannot reach Temporal" in err


def test_the_command_line_loads_no_cloud_sdk_until_a_catalog_is_read() -> None:
    sdks = ("hcloud", "digitalocean", "activities.cloud")
    code = f"import sys, clients.cli; print(sorted(m for m in {sdks!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"
