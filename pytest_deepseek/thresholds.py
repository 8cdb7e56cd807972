"""The thresholds file (version 1): loading with line-precise errors, profile lookup.

Each gate's spec module owns its schema fragment and names (`serving.spec`, `training.spec`,
`accuracy.spec`); this module composes them into the document schema. The serving part is resolved
into typed `Scenario`s (profile serving defaults merged in); the training and accuracy parts are
handed on as plain dicts to their pipelines.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .accuracy.spec import ACCURACY_SECTION
from .regression.spec import REGRESSION_SECTION
from .schema import (CONFIDENCE, FRACTION, POSITIVE_INT, Flag, ListOf, Mapping_, MapOf, Number, Path_, SchemaError, Spec,
                     Text, dotted)
from .serving.spec import (APIS, DEADLINE_FIELDS, ROUTING_POLICIES, SERVING_SECTION, Scenario, check_scenario_shape,
                           scenario_from)
from .settings import is_url
from .training.spec import TRAINING_ENTRY
from .yaml_lines import YamlSyntaxError, load_lined


class ThresholdsError(Exception):
    """A problem in a thresholds file; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Profile:
    """One deployment under test: model × engine × hardware × topology."""

    name: str
    model: str | None = None
    engine: str | None = None
    hardware: str | None = None
    nodes: int = 1
    devices_per_node: int = 1
    api: str = "completions"
    endpoint: str | None = None
    endpoints: tuple[str, ...] = ()  # replicas of one deployment, measured together (no proxy in front)
    warmup_endpoints: tuple[str, ...] = ()  # URLs only woken up before measuring (behind the endpoint)
    routing: str | None = None  # how requests are spread over `endpoints`
    tokenizer: str | None = None
    description: str | None = None
    scenarios: tuple[Scenario, ...] = ()
    training: tuple[dict[str, Any], ...] = ()
    accuracy: dict[str, Any] | None = None
    confidence: float = 0.95
    error_budget: float = 0.01
    # Per-request deadlines the profile (or the file's defaults:) gives its scenarios: key -> seconds.
    deadlines: Mapping[str, float] = field(default_factory=dict)
    # Tolerances against a baseline run (the file's regression: section, the profile's over it).
    regression: Mapping[str, Any] = field(default_factory=dict)
    source_line: int | None = None


@dataclass(frozen=True)
class Thresholds:
    """A loaded thresholds file."""

    path: Path | None
    profiles: Mapping[str, Profile]

    def select(self, names: Sequence[str]) -> list[Profile]:
        """The profiles named (or the only one); an unknown name is an error listing them."""
        if not names:
            if len(self.profiles) == 1:
                return list(self.profiles.values())
            if not self.profiles:
                raise ThresholdsError(f"{self.path}: no profiles defined")
            raise ThresholdsError(
                f"{self.path} defines {len(self.profiles)} profiles; choose with --deepseek-profile: "
                + ", ".join(sorted(self.profiles))
            )
        chosen = []
        for name in names:
            if name not in self.profiles:
                near = difflib.get_close_matches(name, list(self.profiles), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ThresholdsError(
                    f"profile {name!r} is not in {self.path}{hint}; profiles: {', '.join(sorted(self.profiles))}"
                )
            chosen.append(self.profiles[name])
        return chosen


_PROFILE_FIELDS: dict[str, Spec] = {
    "model": Text(),
    "engine": Text(),
    "hardware": Text(),
    "nodes": POSITIVE_INT,
    "devices_per_node": POSITIVE_INT,
    "api": Text(choices=APIS),
    "endpoint": Text(),
    "endpoints": ListOf(item=Text(), min_items=1),
    "warmup_endpoints": ListOf(item=Text(), min_items=1),
    "routing": Text(choices=ROUTING_POLICIES),
    "tokenizer": Text(),
    "description": Text(),
    "confidence": CONFIDENCE,
    "error_budget": FRACTION,
    **DEADLINE_FIELDS,
    "serving": SERVING_SECTION,
    "training": ListOf(item=TRAINING_ENTRY),
    "accuracy": ACCURACY_SECTION,
    "regression": REGRESSION_SECTION,
}


def _check_profile_urls(values: dict[str, Any], path: Path_) -> None:
    """`endpoint:` (one URL) or `endpoints:` (replicas), not both; every URL listed is a URL."""
    if "endpoint" in values and "endpoints" in values:
        raise SchemaError((*path, "endpoints"), "give endpoint: (one URL) or endpoints: (the replicas of one "
                                                "deployment), not both")
    for key in ("endpoints", "warmup_endpoints"):
        for index, url in enumerate(values.get(key) or ()):
            if not is_url(url):
                raise SchemaError((*path, key, index), f"expected a URL (http://host:port/v1 or sim://NAME), got {url!r}")


_PROFILE = Mapping_(fields=_PROFILE_FIELDS, what="profile", validate=_check_profile_urls)
_DEFAULTS = Mapping_(
    fields={"confidence": CONFIDENCE, "error_budget": FRACTION, "allow_inconclusive": Flag(), **DEADLINE_FIELDS},
    what="defaults section",
)
_DOCUMENT = Mapping_(
    fields={"version": Number(minimum=1, maximum=1, integer=True), "defaults": _DEFAULTS,
            "profiles": MapOf(value=_PROFILE), "regression": REGRESSION_SECTION},
    required=("version", "profiles"),
    what="thresholds file",
)


def _profile_from(name: str, values: Mapping[str, Any], file_defaults: Mapping[str, Any], line: int | None,
                  file_regression: Mapping[str, Any] | None = None) -> Profile:
    confidence = values.get("confidence", file_defaults.get("confidence", 0.95))
    error_budget = values.get("error_budget", file_defaults.get("error_budget", 0.01))
    serving = values.get("serving") or {}
    scenario_defaults = {
        "confidence": confidence,
        "error_budget": error_budget,
        **({"allow_inconclusive": file_defaults["allow_inconclusive"]} if "allow_inconclusive" in file_defaults else {}),
        **(serving.get("defaults") or {}),
    }
    scenarios = []
    for index, raw in enumerate(serving.get("scenarios") or []):
        where = ("profiles", name, "serving", "scenarios", index)
        merged_keys = {**scenario_defaults, **raw}
        if "input_len" not in merged_keys or "output_len" not in merged_keys:
            raise SchemaError(where, "every scenario needs input_len and output_len (here or in serving.defaults)")
        scenario = scenario_from(raw, scenario_defaults)
        # The defaults merged in must still make one coherent load shape.
        shape_keys = ("concurrency", "request_rate", "batch_size", "dataset", "dataset_path")
        check_scenario_shape({k: getattr(scenario, k) for k in shape_keys if getattr(scenario, k) is not None}, where)
        if any(s.ident == scenario.ident for s in scenarios):
            raise SchemaError(where, f"two scenarios would both be called {scenario.ident!r}: give one a name:")
        scenarios.append(scenario)
    names = [str(entry.get("name")) for entry in values.get("training") or []]
    for index, entry_name in enumerate(names):
        if entry_name in names[:index]:
            raise SchemaError(("profiles", name, "training", index, "name"),
                              f"two training entries are called {entry_name!r}: names must be unique")
    return Profile(
        name=name,
        model=values.get("model"),
        engine=values.get("engine"),
        hardware=values.get("hardware"),
        nodes=values.get("nodes", 1),
        devices_per_node=values.get("devices_per_node", 1),
        api=values.get("api", "completions"),
        endpoint=values.get("endpoint"),
        endpoints=tuple(values.get("endpoints") or ()),
        warmup_endpoints=tuple(values.get("warmup_endpoints") or ()),
        routing=values.get("routing"),
        tokenizer=values.get("tokenizer"),
        description=values.get("description"),
        scenarios=tuple(scenarios),
        training=tuple(values.get("training") or ()),
        accuracy=values.get("accuracy"),
        confidence=confidence,
        error_budget=error_budget,
        deadlines={key: values.get(key, file_defaults.get(key)) for key in DEADLINE_FIELDS
                   if values.get(key, file_defaults.get(key)) is not None},
        regression={**(file_regression or {}), **(values.get("regression") or {})},
        source_line=line,
    )


def parse_thresholds(text: str, path: Path | None = None) -> Thresholds:
    """Parse and validate thresholds text; errors are `ThresholdsError` naming file:line and key."""
    where = str(path) if path is not None else "<thresholds>"
    try:
        document = load_lined(text)
    except YamlSyntaxError as exc:
        line = f":{exc.line}" if exc.line else ""
        raise ThresholdsError(f"{where}{line}: not valid YAML: {exc}") from exc
    if document.data is None:
        raise ThresholdsError(f"{where}: the file is empty (expected 'version: 1' and 'profiles:')")
    try:
        data = _DOCUMENT.check(document.data, ())
        defaults = data.get("defaults") or {}
        profiles = {
            name: _profile_from(name, values, defaults, document.line_of(("profiles", name)), data.get("regression"))
            for name, values in (data.get("profiles") or {}).items()
        }
    except SchemaError as exc:
        line = document.line_of(exc.path)
        line_part = f":{line}" if line else ""
        raise ThresholdsError(f"{where}{line_part}: {dotted(exc.path)}: {exc.message}") from exc
    return Thresholds(path=path, profiles=profiles)


def load_thresholds(path: Path) -> Thresholds:
    """Read and validate the thresholds file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ThresholdsError(f"thresholds file {path} does not exist (pass --deepseek-thresholds=PATH)") from exc
    except UnicodeDecodeError as exc:
        raise ThresholdsError(f"{path}: not UTF-8 text ({exc})") from exc
    return parse_thresholds(text, path)


__all__ = [
    "Profile",
    "Scenario",
    "Thresholds",
    "ThresholdsError",
    "load_thresholds",
    "parse_thresholds",
]
