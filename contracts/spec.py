"""What a caller asks for: the agent spec and the rules it must satisfy.

Standard library and our region table only: the client, the CLI and the workflow sandbox all import this, and the
workflow checks a spec again itself because a workflow can be started by anyone holding a Temporal client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from contracts.identifiers import AGENT_ID, AGENT_ID_RULE, TOOL, TOOL_RULE
from contracts.regions import CLOUD_PROVIDERS, locations

# `auto` picks among the clouds in the configured failover order; `local` runs agents as local processes.
PROVIDERS = ("local", *CLOUD_PROVIDERS, "auto")
REGIONS = ("us-east", "us-west", "eu-central", "eu-north", "ap-southeast")
SIZES = ("small", "medium", "large")

DEFAULT_APPROVAL_TIMEOUT_S = 24 * 3600
DEFAULT_HEALTH_TIMEOUT_S = 5 * 60
MAX_SKILLS = 64
DEFAULT_APPROVAL_REQUIRED = ("email.*", "payments.*", "purchases.*")
# A lifetime or idle timeout: from one minute to one year; 0 means "none" for an account, "the account's" in a spec.
LIFETIME_MIN_S = 60
LIFETIME_MAX_S = 365 * 24 * 3600

# Ids end up in VM names, Vault paths, policy names and workflow ids: one rule, shared with the bridge and gateway.
_AGENT_ID = AGENT_ID
_ACCOUNT_ID = AGENT_ID
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SKILL = TOOL
_TOOL_PATTERN = re.compile(r"^[a-z*][a-z0-9_.*?-]{0,63}$")
_APPROVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class SpecError(ValueError):
    """A field of a request is not acceptable. Carries the field so a CLI or API can point at it.

    `message` may quote the refused value (helpful on a person's own terminal); `rule` says what is allowed without
    quoting it, for refusals that land in workflow history, current details or the audit trail.
    """

    def __init__(self, field_name: str, message: str, *, rule: str | None = None) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message
        self.rule = rule or message

    @property
    def without_value(self) -> str:
        return f"{self.field}: {self.rule}"


@dataclass
class AgentSpec:
    account_id: str
    name: str
    provider: str = "local"
    region: str = "eu-central"
    size: str = "small"
    skills: list[str] = field(default_factory=list)
    require_approval: bool = False
    # Data residency: only locations in the region's own city, never a provider's nearest substitute.
    strict_region: bool = False
    # Left empty, the client assigns one; the workflow id is "agent-<agent_id>".
    agent_id: str = ""
    approval_timeout_s: int = DEFAULT_APPROVAL_TIMEOUT_S
    health_timeout_s: int = DEFAULT_HEALTH_TIMEOUT_S
    # Tools (fnmatch patterns) the bridge runs only after a human approves: sending email and spending money.
    approval_required: list[str] = field(default_factory=lambda: list(DEFAULT_APPROVAL_REQUIRED))
    # Who may approve this agent's requests; empty means the worker's configured default approvers.
    approvers: list[str] = field(default_factory=list)
    escalation_approvers: list[str] = field(default_factory=list)
    # Fleet health: this many failed checks in a row make the agent `degraded`; with `replace_unhealthy` it is then
    # rebuilt on a new VM with a fresh bootstrap credential.
    unhealthy_threshold: int = 3
    replace_unhealthy: bool = False
    # Destroyed this long after it was created, or after this long without a request to its bridge's agent API;
    # 0 takes the account's default (`lobstack limits`), which may be none.
    max_lifetime_s: int = 0
    idle_timeout_s: int = 0


def _shown(value: object) -> str:
    """A refused value as quoted in a message: bounded, because a message lands in history, logs and terminals."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_pattern(field_name: str, value: object, pattern: re.Pattern[str], rule: str) -> None:
    if not isinstance(value, str) or not value:
        raise SpecError(field_name, f"is required ({rule})")
    if not pattern.fullmatch(value):
        raise SpecError(field_name, f"{_shown(value)} is not allowed; must be {rule}", rule=f"must be {rule}")


def _check_choice(field_name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        choices = f"choose one of: {', '.join(allowed)}"
        raise SpecError(field_name, f"{_shown(value)} is not allowed; {choices}", rule=choices)


def _check_seconds(field_name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        rule = f"must be a whole number of seconds from {low} to {high}"
        raise SpecError(field_name, f"{_shown(value)} is not allowed; {rule}", rule=rule)


ACCOUNT_ID_RULE = AGENT_ID_RULE
NAME_RULE = "1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
SKILL_RULE = TOOL_RULE
TOOL_PATTERN_RULE = "1-64 characters of a-z, 0-9, '_', '.', '-' and the wildcards '*' and '?'"
APPROVER_RULE = "1-64 characters of letters, digits, '.', '_', '@', '+' and '-' (a user name or e-mail)"


def validate_lifetime(field_name: str, value: object) -> None:
    """0, or whole seconds from a minute to a year."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 0 or LIFETIME_MIN_S <= value <= LIFETIME_MAX_S)
    ):
        rule = f"must be 0 (none) or a whole number of seconds from {LIFETIME_MIN_S} to {LIFETIME_MAX_S}"
        raise SpecError(field_name, f"{_shown(value)} is not allowed; {rule}", rule=rule)


def _check_placement(spec: AgentSpec) -> None:
    """A strict account must get an exact location from the provider (or, for auto, from at least one)."""
    if spec.provider == "local" or not spec.strict_region:
        return
    candidates = CLOUD_PROVIDERS if spec.provider == "auto" else (spec.provider,)
    if not any(locations(name, spec.region, exact_only=True) for name in candidates):
        exact = [name for name in CLOUD_PROVIDERS if locations(name, spec.region, exact_only=True)]
        raise SpecError(
            "region",
            f"{spec.provider} has no location in {spec.region} itself and the account refuses substitutes "
            f"(strict_region); providers with an exact location there: {', '.join(exact) or 'none'}",
        )


def _check_names(field_name: str, values: object, pattern: re.Pattern[str], rule: str) -> list[str]:
    if not isinstance(values, list):
        raise SpecError(field_name, "must be a list")
    if len(values) > MAX_SKILLS:
        raise SpecError(field_name, f"{len(values)} given; at most {MAX_SKILLS} are allowed")
    for value in values:
        _check_pattern(field_name, value, pattern, rule)
    if len(set(values)) != len(values):
        raise SpecError(field_name, "each entry may be listed once")
    return list(values)


def validate_skills(skills: object) -> list[str]:
    return _check_names("skills", skills, _SKILL, SKILL_RULE)


def validate_tool_patterns(patterns: object) -> list[str]:
    return _check_names("approval_required", patterns, _TOOL_PATTERN, TOOL_PATTERN_RULE)


def approver_name_ok(name: object) -> bool:
    """Whether a name may decide anything: the same rule as the spec's approvers."""
    return isinstance(name, str) and _APPROVER.fullmatch(name) is not None


# Names that examples, templates and docs use for "someone": a body pasted unchanged must never approve as them, and
# they are never configured as approvers. Compared case-insensitively with '-', '_', '.', '+' and spaces removed.
_PLACEHOLDER_NAMES = frozenset(
    {
        "yourname", "youremail", "yourapprovername", "approvername", "name", "approver", "approvers", "user",
        "username", "usr", "example", "someone", "somebody", "anyone", "anybody", "nobody", "changeme", "me", "myself",
        "you", "test", "tester", "foo", "bar", "baz", "xxx", "todo", "tbd", "placeholder", "johndoe", "janedoe",
        "firstlast", "firstnamelastname", "unknown", "anonymous", "lobstack", "system",
    }
)  # fmt: skip
# Domains reserved for examples (RFC 2606) and e-mail addresses' example domains.
_EXAMPLE_DOMAIN = re.compile(r"(^|\.)(example|test|invalid|localhost)(\.|$)", re.IGNORECASE)
PLACEHOLDER_RULE = (
    "an example or placeholder name (your-name, approver, user, someone, an example.* address ...) is never an approver"
)


def is_placeholder_approver(name: object) -> bool:
    """Whether `name` is a placeholder or example name, which never decides anything and is never configured."""
    if not isinstance(name, str):
        return False
    local, _, domain = name.partition("@")
    if domain and _EXAMPLE_DOMAIN.search(domain):
        return True
    return re.sub(r"[-_.+ ]", "", local).lower() in _PLACEHOLDER_NAMES


def validate_approvers(field_name: str, names: object) -> list[str]:
    """A list of approver names: each a user name or e-mail, listed once, and never a placeholder."""
    checked = _check_names(field_name, names, _APPROVER, APPROVER_RULE)
    for name in checked:
        if is_placeholder_approver(name):
            raise SpecError(field_name, f"{_shown(name)}: {PLACEHOLDER_RULE}", rule=PLACEHOLDER_RULE)
    return checked


def validate_agent_id(agent_id: object) -> None:
    _check_pattern("agent_id", agent_id, _AGENT_ID, AGENT_ID_RULE)


def validate_spec(spec: AgentSpec, *, providers: tuple[str, ...] = PROVIDERS) -> None:
    """Raise SpecError naming the first bad field; returns quietly for a spec that may be provisioned."""
    _check_pattern("account_id", spec.account_id, _ACCOUNT_ID, ACCOUNT_ID_RULE)
    _check_pattern("name", spec.name, _NAME, NAME_RULE)
    if spec.agent_id != "":  # only the empty string means "let the client assign one"; None or [] is refused
        validate_agent_id(spec.agent_id)
    _check_choice("provider", spec.provider, providers)
    _check_choice("region", spec.region, REGIONS)
    _check_choice("size", spec.size, SIZES)
    if not isinstance(spec.strict_region, bool):
        raise SpecError("strict_region", "must be true or false")
    _check_placement(spec)
    validate_skills(spec.skills)
    validate_tool_patterns(spec.approval_required)
    validate_approvers("approvers", spec.approvers)
    validate_approvers("escalation_approvers", spec.escalation_approvers)
    if (
        isinstance(spec.unhealthy_threshold, bool)
        or not isinstance(spec.unhealthy_threshold, int)
        or not (1 <= spec.unhealthy_threshold <= 100)
    ):
        raise SpecError(
            "unhealthy_threshold",
            f"{_shown(spec.unhealthy_threshold)} is not allowed; must be 1 to 100",
            rule="must be a whole number from 1 to 100",
        )
    if not isinstance(spec.replace_unhealthy, bool):
        raise SpecError("replace_unhealthy", "must be true or false")
    if not isinstance(spec.require_approval, bool):
        raise SpecError("require_approval", "must be true or false")
    _check_seconds("approval_timeout_s", spec.approval_timeout_s, 60, 30 * 24 * 3600)
    _check_seconds("health_timeout_s", spec.health_timeout_s, 1, 3600)
    validate_lifetime("max_lifetime_s", spec.max_lifetime_s)
    validate_lifetime("idle_timeout_s", spec.idle_timeout_s)
