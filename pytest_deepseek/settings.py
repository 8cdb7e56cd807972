"""Options resolved once into a frozen `Settings` object.

Precedence, for every option: command line, then environment variable (where one exists), then
the ini value, then the default. Bad values raise `SettingsError` with a clear message; the plugin
turns that into `pytest.UsageError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .accuracy.spec import ACCURACY_BACKENDS
from .serving.spec import APIS, DATASETS


class SettingsError(Exception):
    """An option has a value that cannot be used."""


@dataclass(frozen=True)
class OptionSpec:
    """One command-line option with its ini mirror and environment variable."""

    name: str  # dest, e.g. "endpoint"
    help: str
    kind: str = "str"  # str | int | float | bool | list | intlist | ratelist
    default: Any = None
    env: str | None = None
    ini: bool = True
    metavar: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """`--deepseek-<name>`: every option carries the prefix (other plugins own `--profile`,
        `--timeout`, ...), except `--endpoint`, the name users know."""
        return "--endpoint" if self.name == UNPREFIXED else f"--deepseek-{self.name.replace('_', '-')}"


UNPREFIXED = "endpoint"


def _one_of(choices: Sequence[str]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("endpoint", "OpenAI-compatible base URL (http://host:port/v1) or sim://NAME[?key=value] "
               "to start the embedded simulated engine. Repeatable.", kind="list", env="DEEPSEEK_ENDPOINT",
               metavar="URL"),
    OptionSpec("api_key", "API key sent as a Bearer token (default: $DEEPSEEK_API_KEY, then "
               "$OPENAI_API_KEY). Never printed.", env="DEEPSEEK_API_KEY", ini=False, metavar="KEY"),
    OptionSpec("model", "Served model name (default: the profile's model, else the endpoint's first "
               "model in /v1/models).", metavar="NAME"),
    OptionSpec("api", f"API to exercise: {_one_of(APIS)} (default: the profile's).", metavar="API",
               choices=APIS),
    OptionSpec("tokenizer", "Tokenizer folder or name (default: the embedded DeepSeek V3/R1 "
               "tokenizer). A local folder loads with no network.", metavar="PATH_OR_NAME"),
    OptionSpec("trust_remote_code", "Allow tokenizer code from the tokenizer folder.",
               kind="bool", default=False),
    OptionSpec("thresholds", "Thresholds file (default: thresholds.yaml in the rootdir).",
               metavar="PATH"),
    OptionSpec("profile", "Profile(s) of the thresholds file to test. Repeatable.", kind="list",
               metavar="NAME"),
    OptionSpec("nodes", "Override the profile's node count (per-node figures divide by it).",
               kind="int", metavar="N"),
    OptionSpec("devices_per_node", "Override the profile's devices per node.", kind="int",
               metavar="N"),
    OptionSpec("results_dir", "Folder for run results (default: deepseek-results).",
               default="deepseek-results", metavar="DIR"),
    OptionSpec("input_len", "Ad-hoc grid: input lengths, comma separated.", kind="intlist",
               ini=False, metavar="N[,N...]"),
    OptionSpec("output_len", "Ad-hoc grid: output lengths, comma separated.", kind="intlist",
               ini=False, metavar="N[,N...]"),
    OptionSpec("concurrency", "Closed-loop clients, comma separated (grid or override).",
               kind="intlist", ini=False, metavar="N[,N...]"),
    OptionSpec("request_rate", "Open-loop request rates per second (or inf), comma separated.",
               kind="ratelist", ini=False, metavar="R[,R...]"),
    OptionSpec("num_prompts", "Measured requests per scenario (override).", kind="int",
               ini=False, metavar="N"),
    OptionSpec("warmup", "Warmup requests per scenario, excluded from every figure (override).",
               kind="int", ini=False, metavar="N"),
    OptionSpec("dataset", f"Prompt set: {_one_of(DATASETS)} (override).", ini=False, metavar="NAME",
               choices=DATASETS),
    OptionSpec("dataset_path", "File for the sharegpt / jsonl prompt sets.", ini=False,
               metavar="PATH"),
    OptionSpec("early_stop", "End a serving scenario as soon as its verdict is certain.",
               kind="bool", default=False),
    OptionSpec("allow_inconclusive", "Pass a check whose confidence interval straddles "
               "its threshold (default: fail with how many more requests would decide it).", kind="bool",
               default=False),
    OptionSpec("request_timeout", "Seconds one request may take, start to last token "
               "(default: the scenario's timeout_s, 600).", kind="float", metavar="S"),
    # training
    OptionSpec("training_log", "Training log file, folder or glob (repeatable; overrides the "
               "profile's log:).", kind="list", ini=False, metavar="PATH"),
    OptionSpec("follow", "Follow the training log while it is written.", kind="bool", default=False),
    OptionSpec("follow_timeout", "Wall limit when following a log: seconds or 30m / 6h.",
               kind="duration", default=None, metavar="DURATION"),
    OptionSpec("train_cmd", "Launch this training command and follow its output.", ini=False,
               metavar="CMD"),
    OptionSpec("stop_when_decided", "With --deepseek-train-cmd: stop the job once decided.",
               kind="bool", default=False),
    # accuracy
    OptionSpec("eval_results", "Judge an existing evaluation results folder instead of "
               "running one.", ini=False, metavar="DIR"),
    OptionSpec("eval_data", "Local dataset root for the evaluation backend.", metavar="DIR"),
    OptionSpec("eval_backend", f"Override the profile's accuracy backend: {_one_of(ACCURACY_BACKENDS)}.",
               metavar="NAME", choices=ACCURACY_BACKENDS),
    OptionSpec("opencompass_python", "Python of the environment OpenCompass is "
               "installed in.", metavar="PATH"),
    OptionSpec("eval_limit", "Evaluate at most N items per dataset (smoke runs).", kind="int",
               ini=False, metavar="N"),
)

OPTION_BY_NAME = {spec.name: spec for spec in OPTIONS}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `6h` → seconds."""
    text = text.strip().lower()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError as exc:
        raise SettingsError(f"cannot read duration {text!r} (use seconds or 30m / 6h)") from exc


def convert(spec: OptionSpec, raw: Any) -> Any:
    """Convert a raw option value (string, list of strings or already typed) to the spec's kind."""
    if raw is None:
        return None
    try:
        if spec.kind == "bool":
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if spec.kind == "int":
            value = int(raw)
            if value < 0 or (value == 0 and spec.name not in ("warmup",)):
                raise SettingsError(f"{spec.flag} must be a positive whole number, got {raw!r}")
            return value
        if spec.kind == "float":
            value_f = float(raw)
            if not value_f > 0:
                raise SettingsError(f"{spec.flag} must be positive, got {raw!r}")
            return value_f
        if spec.kind == "duration":
            return parse_duration(str(raw))
        if spec.kind == "list":
            items = raw if isinstance(raw, list) else str(raw).split()
            return tuple(items)
        if spec.kind == "intlist":
            items = raw if isinstance(raw, list) else [raw]
            values = tuple(int(v) for item in items for v in _split(str(item)))
            if any(v < 1 for v in values):
                raise SettingsError(f"{spec.flag} values must be positive whole numbers, got {raw!r}")
            return values
        if spec.kind == "ratelist":
            items = raw if isinstance(raw, list) else [raw]
            rates = tuple(math.inf if v.lower() in ("inf", "infinity") else float(v)
                          for item in items for v in _split(str(item)))
            if any(not r > 0 for r in rates):
                raise SettingsError(f"{spec.flag} values must be positive (or inf), got {raw!r}")
            return rates
        return str(raw)
    except ValueError as exc:
        raise SettingsError(f"{spec.flag}: cannot read {raw!r} ({exc})") from exc


@dataclass(frozen=True)
class Settings:
    """Every option, resolved. Lists are tuples; absent values are None."""

    endpoint: tuple[str, ...] = ()
    api_key: str | None = None
    model: str | None = None
    api: str | None = None
    tokenizer: str | None = None
    trust_remote_code: bool = False
    thresholds: Path | None = None
    profile: tuple[str, ...] = ()
    nodes: int | None = None
    devices_per_node: int | None = None
    results_dir: Path = Path("deepseek-results")
    input_len: tuple[int, ...] = ()
    output_len: tuple[int, ...] = ()
    concurrency: tuple[int, ...] = ()
    request_rate: tuple[float, ...] = ()
    num_prompts: int | None = None
    warmup: int | None = None
    dataset: str | None = None
    dataset_path: str | None = None
    early_stop: bool = False
    allow_inconclusive: bool = False
    request_timeout: float | None = None
    thresholds_explicit: bool = False  # --deepseek-thresholds (or its ini) was given: a missing file is an error
    training_log: tuple[str, ...] = ()
    follow: bool = False
    follow_timeout: float | None = None
    train_cmd: str | None = None
    stop_when_decided: bool = False
    eval_results: str | None = None
    eval_data: str | None = None
    eval_backend: str | None = None
    opencompass_python: str | None = None
    eval_limit: int | None = None

    def layered(self, name: str, *profile_values: Any) -> Any:
        """The one precedence rule for a setting the thresholds file can also give: command line >
        environment > ini (already resolved into this object) > the profile (the first of
        `profile_values` that is not None, most specific first) > the option's default.

        A boolean option can only switch a behaviour on: False means "not given".
        """
        value = getattr(self, name)
        if value is not None and value != () and value is not False:  # 0 is a value (--deepseek-warmup=0)
            return value
        for candidate in profile_values:
            if candidate is not None:
                return candidate
        return OPTION_BY_NAME[name].default if value is None or value == () else value

    @property
    def gate_requested(self) -> bool:
        """True when an option asks for a gate (an endpoint, a profile, a thresholds file, a training
        log or command, evaluation results, an ad-hoc grid): only then is the thresholds file read
        before collection. Without one, a project that merely has the plugin installed is left alone."""
        return bool(self.endpoint or self.profile or self.thresholds_explicit or self.training_log
                    or self.train_cmd or self.eval_results or self.adhoc_grid)

    @property
    def adhoc_grid(self) -> bool:
        """True when --deepseek-input-len/--deepseek-output-len describe the scenarios instead of the thresholds file."""
        return bool(self.input_len or self.output_len)

    def overrides(self) -> dict[str, Any]:
        """Values given on the command line that override the thresholds file (recorded in results)."""
        keys = ("model", "api", "nodes", "devices_per_node", "num_prompts", "warmup", "dataset", "dataset_path")
        out = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        if self.concurrency:
            out["concurrency"] = list(self.concurrency)
        if self.request_rate:
            out["request_rate"] = ["inf" if math.isinf(r) else r for r in self.request_rate]
        return out


def resolve(
    get_option: Callable[[str], Any],
    get_ini: Callable[[str], Any],
    environ: dict[str, str] | None = None,
    rootdir: Path | None = None,
    invocation_dir: Path | None = None,
) -> Settings:
    """Build `Settings` from option and ini getters (command line > environment > ini > default).

    Relative paths given on the command line are taken from `invocation_dir` (where pytest was
    started); those from the ini file and the defaults from `rootdir`.
    """
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    from_command_line: set[str] = set()
    for spec in OPTIONS:
        raw = get_option(spec.name)
        if raw not in (None, [], ()) and not (spec.kind == "bool" and raw is False):
            from_command_line.add(spec.name)
        if raw in (None, [], ()) or (spec.kind == "bool" and raw is False):
            env_value = environ.get(spec.env) if spec.env else None
            if spec.name == "api_key" and not env_value:
                env_value = environ.get("OPENAI_API_KEY")
            if env_value:
                raw = env_value
            elif spec.ini:
                ini_value = get_ini(f"deepseek_{spec.name}")
                raw = ini_value if ini_value not in (None, "", []) else raw
        value = convert(spec, raw)
        if value is None or value == ():
            value = spec.default if spec.default is not None else value
        if value is not None:
            values[spec.name] = value
    for spec in OPTIONS:
        if spec.choices and spec.name in values and values[spec.name] not in spec.choices:
            raise SettingsError(f"{spec.flag} must be {_one_of(spec.choices)}, got {values[spec.name]!r}")
    if values.get("concurrency") and values.get("request_rate"):
        raise SettingsError("give --deepseek-concurrency (closed loop) or --deepseek-request-rate (open loop), not both")
    if "profile" in values:
        values["profile"] = tuple(p for item in values["profile"] for p in _split(item))
    for name in ("thresholds", "results_dir"):
        if name in values:
            path = Path(values[name]).expanduser()
            base = invocation_dir if name in from_command_line and invocation_dir is not None else rootdir
            if not path.is_absolute() and base is not None:
                path = base / path
            values[name] = path
    values["thresholds_explicit"] = "thresholds" in values
    if "thresholds" not in values and rootdir is not None:
        values["thresholds"] = rootdir / "thresholds.yaml"
    return Settings(**values)


def ini_names() -> Sequence[OptionSpec]:
    """Options that have an ini mirror."""
    return [spec for spec in OPTIONS if spec.ini]
