"""What an account may have at once (quotas) and how long its agents may live (lifetimes), and the checks of both.

Kept in the registry (table `account_limits`, under row-level security). Quotas are enforced when an agent is
admitted, the first step of its lifecycle, in one transaction that also registers it, so two creates racing for the
last place cannot both get it. Lifetimes: an agent's spec may set its own maximum lifetime and idle timeout; left at
0 it takes the account's default, and an account's maximum caps what a spec may ask for.

Changed through `lobstack limits ...` or `LobstackClient.change_limits`, both of which run the `AccountLimits`
workflow (one activity), so the client needs no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from contracts.regions import CLOUD_PROVIDERS, PLANS
from contracts.spec import (
    _ACCOUNT_ID,
    ACCOUNT_ID_RULE,
    LIFETIME_MAX_S,
    LIFETIME_MIN_S,
    SpecError,
    _check_pattern,
    validate_lifetime,
)

__all__ = [
    "LIFETIME_MAX_S",
    "LIFETIME_MIN_S",
    "LIMITS_ACTIONS",
    "LIMIT_FIELDS",
    "AccountLimits",
    "Admission",
    "Admitted",
    "LimitsAction",
    "LimitsChange",
    "Usage",
    "apply_limits_change",
    "effective_lifetimes",
    "parse_duration",
    "quota_refusal",
    "validate_lifetime",
    "validate_limits_change",
    "vcpus",
    "warning_lead_s",
]

LimitsAction = Literal["show", "set"]
LIMITS_ACTIONS: tuple[LimitsAction, ...] = get_args(LimitsAction)

# Quota ceilings: bounds on what may be configured, so a typo is refused rather than meaning "unlimited".
MAX_AGENTS_CEILING = 1_000_000
MAX_VCPUS_CEILING = 10_000_000

# Every limit of an account, as `AccountLimits`, `LimitsChange` and the `account_limits` table name them.
LIMIT_FIELDS = (
    "max_agents",
    "max_vcpus",
    "max_monthly_usd",
    "max_monthly_eur",
    "default_max_lifetime_s",
    "default_idle_timeout_s",
    "max_lifetime_s",
)
# Monthly spend quotas are whole units of each currency the providers price in (Hetzner EUR; DigitalOcean and Vultr
# USD): no exchange rate is guessed, so an account caps each currency it may spend.
SPEND_CURRENCIES = ("USD", "EUR")
MAX_SPEND_CEILING = 100_000_000
# vCPUs of each provider's plan for our sizes (contracts.regions.PLANS), as the providers' catalogs state them; the
# local provider's processes count as the size's nominal vCPUs, so a quota behaves the same before a cloud is used.
_PLAN_VCPUS: dict[str, int] = {
    "cpx11": 2,
    "cpx21": 3,
    "cpx31": 4,
    "s-1vcpu-2gb": 1,
    "s-2vcpu-4gb": 2,
    "s-4vcpu-8gb": 4,
    "vc2-1c-2gb": 1,
    "vc2-2c-4gb": 2,
    "vc2-4c-8gb": 4,
}
_NOMINAL_VCPUS = {"small": 1, "medium": 2, "large": 4}


def vcpus(provider: str, size: str) -> int:
    """The vCPUs an agent of `size` holds on `provider`; for `auto` (no VM placed yet), the most any cloud gives, so
    admission never under-counts."""
    if provider == "auto":
        return max(vcpus(cloud, size) for cloud in CLOUD_PROVIDERS)
    plan = PLANS.get(provider, {}).get(size)
    if plan is not None:
        return _PLAN_VCPUS[plan]
    return _NOMINAL_VCPUS.get(size, max(_NOMINAL_VCPUS.values()))


@dataclass
class AccountLimits:
    """0 means no limit (quotas) or no default (lifetimes)."""

    account_id: str
    max_agents: int = 0
    max_vcpus: int = 0
    # Monthly list price of the live agents' VMs, before tax, in whole dollars and euros (catalog prices).
    max_monthly_usd: int = 0
    max_monthly_eur: int = 0
    # Lifetimes applied to agents whose spec leaves them at 0, and the most a spec may ask for.
    default_max_lifetime_s: int = 0
    default_idle_timeout_s: int = 0
    max_lifetime_s: int = 0


@dataclass
class LimitsChange:
    """`show`, or `set` the fields given (None leaves a field as it is; 0 removes a limit)."""

    account_id: str
    action: LimitsAction = "show"
    max_agents: int | None = None
    max_vcpus: int | None = None
    max_monthly_usd: int | None = None
    max_monthly_eur: int | None = None
    default_max_lifetime_s: int | None = None
    default_idle_timeout_s: int | None = None
    max_lifetime_s: int | None = None


@dataclass
class Usage:
    """What an account holds now: its live agents (every state but destroyed, rejected and failed) and their vCPUs."""

    agents: int = 0
    vcpus: int = 0
    # Monthly list prices, in cents.
    monthly_usd_cents: int = 0
    monthly_eur_cents: int = 0


@dataclass
class Admission:
    """The first step of a lifecycle: check the account's quotas and register the agent, in one transaction."""

    agent_id: str
    account_id: str
    name: str
    provider: str
    region: str
    size: str
    # The spec's own lifetimes (0: the account's default).
    max_lifetime_s: int = 0
    idle_timeout_s: int = 0
    strict_region: bool = False
    # The state the agent is registered in: pending_approval or provisioning.
    state: str = "provisioning"
    event_key: str = ""
    # Recorded as the agent's first event, `agent.requested`, with the usage it was admitted at.
    reason: str = ""
    # Its VM's monthly list price in cents, set by the admitting activity from the providers' catalogs: for `auto`
    # or a region with several locations, the most any candidate placement costs in each currency.
    monthly_usd_cents: int = 0
    monthly_eur_cents: int = 0


@dataclass
class Admitted:
    """Admitted, with the lifetimes that apply (0: none) and what the account held including this agent."""

    max_lifetime_s: int = 0
    idle_timeout_s: int = 0
    usage: Usage | None = None


def _check_amount(field_name: str, value: object, ceiling: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ceiling:
        raise SpecError(field_name, f"must be a whole number from 0 (no limit) to {ceiling}")


def validate_limits_change(change: LimitsChange) -> None:
    """Raise SpecError naming the first bad field: before anything is stored."""
    _check_pattern("account", change.account_id, _ACCOUNT_ID, ACCOUNT_ID_RULE)
    if change.action not in LIMITS_ACTIONS:
        raise SpecError("action", f"choose one of: {', '.join(LIMITS_ACTIONS)}")
    given = {name: getattr(change, name) for name in LIMIT_FIELDS if getattr(change, name) is not None}
    if change.action == "show" and given:
        raise SpecError(next(iter(given)), "is given only to set limits, not to show them")
    if change.action == "set" and not given:
        raise SpecError("limits", "name at least one limit to set")
    for name, value in given.items():
        if name == "max_agents":
            _check_amount(name, value, MAX_AGENTS_CEILING)
        elif name == "max_vcpus":
            _check_amount(name, value, MAX_VCPUS_CEILING)
        elif name.startswith("max_monthly_"):
            _check_amount(name, value, MAX_SPEND_CEILING)
        else:
            validate_lifetime(name, value)


def apply_limits_change(limits: AccountLimits, change: LimitsChange) -> AccountLimits:
    """The limits after `change` (already validated); then checked whole: a default above the maximum is refused."""
    after = AccountLimits(
        account_id=limits.account_id,
        **{
            name: getattr(limits, name) if getattr(change, name) is None else getattr(change, name)
            for name in LIMIT_FIELDS
        },
    )
    if after.max_lifetime_s and after.default_max_lifetime_s > after.max_lifetime_s:
        raise SpecError(
            "default_max_lifetime_s",
            f"{after.default_max_lifetime_s}s is above the account's max_lifetime_s ({after.max_lifetime_s}s)",
        )
    return after


def effective_lifetimes(admission: Admission, limits: AccountLimits) -> tuple[int, int]:
    """(max lifetime, idle timeout) in seconds for the agent, 0 meaning none; SpecError when the spec asks more than
    the account allows."""
    lifetime = admission.max_lifetime_s or limits.default_max_lifetime_s or limits.max_lifetime_s
    if limits.max_lifetime_s and lifetime > limits.max_lifetime_s:
        raise SpecError(
            "max_lifetime_s",
            f"{lifetime}s is above account {limits.account_id}'s maximum of {limits.max_lifetime_s}s",
        )
    return lifetime, admission.idle_timeout_s or limits.default_idle_timeout_s


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def quota_refusal(limits: AccountLimits, before: Usage, size_vcpus: int, admission: Admission | None = None) -> str:
    """Why one more agent would break a quota ("" when it fits), naming the quota and the usage. `size_vcpus` is what
    it holds; its monthly prices are the admission's."""
    account = limits.account_id
    if limits.max_agents and before.agents + 1 > limits.max_agents:
        return (
            f"quota max_agents of account {account} is {limits.max_agents} and {before.agents} agents are live; "
            "destroy one or raise the quota with `lobstack limits set`"
        )
    if limits.max_vcpus and before.vcpus + size_vcpus > limits.max_vcpus:
        return (
            f"quota max_vcpus of account {account} is {limits.max_vcpus}; its live agents hold {before.vcpus} and "
            f"this one needs {size_vcpus}; pick a smaller size, destroy an agent or raise the quota"
        )
    for currency, cap, held, needs in (
        ("USD", limits.max_monthly_usd, before.monthly_usd_cents, admission.monthly_usd_cents if admission else 0),
        ("EUR", limits.max_monthly_eur, before.monthly_eur_cents, admission.monthly_eur_cents if admission else 0),
    ):
        if cap and needs and held + needs > cap * 100:
            return (
                f"quota max_monthly_{currency.lower()} of account {account} is {cap} {currency}; its live agents "
                f"cost {_money(held, currency)} a month and this one {_money(needs, currency)}; pick a smaller "
                "size, destroy an agent or raise the quota"
            )
    return ""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(field_name: str, text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `2h` or `3d`; `0` or `none` is 0. SpecError naming the field otherwise."""
    said = text.strip().lower()
    if said in ("0", "none"):
        return 0
    number, unit = (said[:-1], said[-1]) if said[-1:] in _UNITS else (said, "s")
    if not number.isdigit() or len(number) > 9:
        raise SpecError(field_name, f"{text[:40]!r} is not a duration; write 0, none, or a number with s, m, h or d")
    seconds = int(number) * _UNITS[unit]
    validate_lifetime(field_name, seconds)
    return seconds


def warning_lead_s(limit_s: int) -> int:
    """How long before a lifetime or idle deadline the agent is warned: a tenth of it, at most 15 minutes."""
    return min(limit_s // 10, 15 * 60)
