"""Options resolved once into a frozen `Settings` object.

Precedence, for every option: command line, then environment variable (where one exists), then
the ini value, then the default. Bad values raise `SettingsError` with a clear message; the plugin
turns that into `pytest.UsageError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .accuracy.spec import ACCURACY_BACKENDS
from .credentials import ApiKey
from .serving.spec import APIS, DATASETS, DEFAULT_DEADLINES
from .tls import TlsPolicy


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
               "to start the embedded simulated engine. Repeatable: PROFILE=URL measures that profile "
               "against its own endpoint (a hardware matrix).", kind="list", env="DEEPSEEK_ENDPOINT",
               metavar="URL"),
    OptionSpec("api_key", "API key sent as a Bearer token (default: --deepseek-api-key-file, "
               "$DEEPSEEK_API_KEY, $DEEPSEEK_API_KEY_FILE, then $OPENAI_API_KEY). Never printed.",
               env="DEEPSEEK_API_KEY", ini=False, metavar="KEY"),
    OptionSpec("api_key_file", "File holding the API key (read once, surrounding whitespace "
               "stripped; never printed).", env="DEEPSEEK_API_KEY_FILE", metavar="PATH"),
    OptionSpec("ca_bundle", "CA certificates (PEM file or hashed folder) that HTTPS endpoints are "
               "verified against (default: the system's CAs).", env="DEEPSEEK_CA_BUNDLE", metavar="PATH"),
    OptionSpec("insecure", "Do not verify the HTTPS endpoint's certificate (said in the header and "
               "the results).", kind="bool", default=False),
    OptionSpec("model", "Served model name (default: the profile's model, else the endpoint's first "
               "model in /v1/models).", metavar="NAME"),
    OptionSpec("api", f"API to exercise: {_one_of(APIS)} (default: the profile's).", metavar="API",
               choices=APIS),
    OptionSpec("tokenizer", "Tokenizer folder or name (default: the profile's tokenizer:, else the embedded "
               "DeepSeek V3/R1 tokenizer). A local folder loads with no network.", metavar="PATH_OR_NAME"),
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
    OptionSpec("resume", "Continue the run in RUN_DIR (a killed or interrupted one): tests whose results "
               "its summary.json holds carry them over instead of running again; the others run and "
               "add to the same records and summary.", ini=False, metavar="RUN_DIR"),
    OptionSpec("baseline", "Compare every gate test with the same test of a baseline: a saved baseline's name "
               "(<results dir>/baselines/NAME) or a run folder; regression.<metric> checks join the test's result.",
               metavar="NAME|PATH"),
    OptionSpec("save_baseline", "Save this run as a baseline when it ends: a name (<results dir>/baselines/NAME, "
               "replaced whole) or a folder.", ini=False, metavar="NAME|PATH"),
    OptionSpec("html", "Write the run's report as one self-contained HTML file at PATH when it ends "
               "(needs pip install \"pytest-deepseek[html]\").", metavar="PATH"),
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
    OptionSpec("connect_timeout", "Seconds a request may take to connect (default: the scenario's "
               f"connect_timeout_s, else {DEFAULT_DEADLINES.connect_s:g}).", kind="float", metavar="S"),
    OptionSpec("first_byte_timeout", "Seconds from sending a request to the first byte of its answer's "
               "body; headers alone do not count (default: the scenario's first_byte_timeout_s, else "
               f"{DEFAULT_DEADLINES.first_byte_s:g}).", kind="float", metavar="S"),
    OptionSpec("stall_timeout", "Seconds a streaming answer may go without a byte once it started "
               f"(default: the scenario's stall_timeout_s, else {DEFAULT_DEADLINES.stall_s:g}).",
               kind="float", metavar="S"),
    OptionSpec("request_timeout", "Seconds one request may take, start to end (default: the scenario's "
               f"timeout_s, else {DEFAULT_DEADLINES.total_s:g}).", kind="float", metavar="S"),
    OptionSpec("session_deadline", "Wall limit of the whole session, from its start: seconds or 30m / 6h. A "
               "serving scenario running then stops (an ERROR, its records kept); a gate test starting "
               "later is an ERROR, not run.", kind="duration", metavar="DURATION"),
    # training
    OptionSpec("training_log", "Training log file, folder or glob (repeatable; overrides the "
               "profile's log:).", kind="list", ini=False, metavar="PATH"),
    OptionSpec("follow", "Follow the training log while it is written.", kind="bool", default=False),
    OptionSpec("follow_timeout", "Wall limit when following a log: seconds or 30m / 6h (default 1h).",
               kind="duration", default=3600.0, metavar="DURATION"),
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
            seconds = parse_duration(str(raw))
            if not seconds > 0:
                raise SettingsError(f"{spec.flag} must be positive, got {raw!r}")
            return seconds
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

    endpoint: tuple[str, ...] = field(default=(), repr=False)  # a URL may carry credentials
    api_key: ApiKey | None = None  # prints as ***: `.reveal()` where a header is built
    api_key_file: Path | None = None
    ca_bundle: Path | None = None
    insecure: bool = False
    model: str | None = None
    api: str | None = None
    tokenizer: str | None = None
    trust_remote_code: bool = False
    thresholds: Path | None = None
    profile: tuple[str, ...] = ()
    nodes: int | None = None
    devices_per_node: int | None = None
    results_dir: Path = Path("deepseek-results")
    resume: Path | None = None  # the run folder to continue (results_dir is then its parent)
    # NAME or PATH, kept as given: `regression.baseline.resolve` / `destination` tell them apart
    baseline: str | None = None
    save_baseline: str | None = None
    html: Path | None = None  # the HTML report written when the run ends
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
    connect_timeout: float | None = None
    first_byte_timeout: float | None = None
    stall_timeout: float | None = None
    request_timeout: float | None = None
    session_deadline: float | None = None
    thresholds_explicit: bool = False  # --deepseek-thresholds (or its ini) was given: a missing file is an error
    training_log: tuple[str, ...] = ()
    follow: bool = False
    follow_timeout: float = 3600.0
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
    def tls(self) -> TlsPolicy:
        """How HTTPS endpoints are verified: --deepseek-ca-bundle, the system's CAs, or not at all
        with --deepseek-insecure."""
        return TlsPolicy(ca_bundle=str(self.ca_bundle) if self.ca_bundle else None, verify=not self.insecure)

    @property
    def gate_requested(self) -> bool:
        """True when an option asks for a gate (an endpoint, a profile, a thresholds file, a training
        log or command, evaluation results, an ad-hoc grid): only then is the thresholds file read
        before collection. Without one, a project that merely has the plugin installed is left alone."""
        return bool(self.endpoint or self.profile or self.thresholds_explicit or self.training_log
                    or self.train_cmd or self.eval_results or self.adhoc_grid or self.resume)

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

    Relative paths given on the command line or in the environment are taken from `invocation_dir`
    (where pytest was started); those from the ini file and the defaults from `rootdir`.
    """
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # name -> "option" | "env" | "openai-env" | "ini"
    for spec in OPTIONS:
        raw, source = _raw_value(spec, get_option, get_ini, environ)
        value = convert(spec, raw)
        if value is None or value == ():
            value = spec.default if spec.default is not None else value
        if value is not None:
            values[spec.name] = value
            if source is not None:
                sources[spec.name] = source
    for spec in OPTIONS:
        if spec.choices and spec.name in values and values[spec.name] not in spec.choices:
            raise SettingsError(f"{spec.flag} must be {_one_of(spec.choices)}, got {values[spec.name]!r}")
    if values.get("concurrency") and values.get("request_rate"):
        raise SettingsError("give --deepseek-concurrency (closed loop) or --deepseek-request-rate (open loop), not both")
    if "profile" in values:
        values["profile"] = tuple(p for item in values["profile"] for p in _split(item))
    EndpointArgs.parse(values.get("endpoint", ()))  # an empty `PROFILE=` is an error now, not at first use
    for name in ("thresholds", "results_dir", "api_key_file", "ca_bundle", "resume", "html"):
        if name in values:
            path = Path(values[name]).expanduser()
            outside = sources.get(name) in ("option", "env")
            base = invocation_dir if outside and invocation_dir is not None else rootdir
            if not path.is_absolute() and base is not None:
                path = base / path
            values[name] = path
    values["thresholds_explicit"] = "thresholds" in values
    if "thresholds" not in values and rootdir is not None:
        values["thresholds"] = rootdir / "thresholds.yaml"
    values["api_key"] = _api_key(values, sources)
    _check_tls(values)
    if "resume" in values:
        values["resume"] = _run_to_resume(values["resume"])
        values["results_dir"] = values["resume"].parent
    return Settings(**values)


def _run_to_resume(path: Path) -> Path:
    """The run folder --deepseek-resume names (a results folder means its `latest` run)."""
    from .report.rebuild import RunDirError, find_run_dir

    try:
        return find_run_dir(path)
    except RunDirError as exc:
        raise SettingsError(f"--deepseek-resume: {exc}") from None


def _raw_value(spec: OptionSpec, get_option: Callable[[str], Any], get_ini: Callable[[str], Any],
               environ: dict[str, str]) -> tuple[Any, str | None]:
    """The option's raw value and where it came from: command line > environment > ini."""
    raw = get_option(spec.name)
    if raw not in (None, [], ()) and not (spec.kind == "bool" and raw is False):
        return raw, "option"
    env_value = environ.get(spec.env) if spec.env else None
    if env_value:
        return env_value, "env"
    if spec.name == "api_key" and environ.get("OPENAI_API_KEY"):
        return environ["OPENAI_API_KEY"], "openai-env"
    if spec.ini:
        ini_value = get_ini(f"deepseek_{spec.name}")
        if ini_value not in (None, "", []):
            return ini_value, "ini"
    return raw, None


# Where the key comes from, first found wins: the two options, the two DEEPSEEK_ variables, the
# key file of the ini, and last the generic $OPENAI_API_KEY.
_KEY_RANK = {("api_key", "option"): 0, ("api_key_file", "option"): 1, ("api_key", "env"): 2,
             ("api_key_file", "env"): 3, ("api_key_file", "ini"): 4, ("api_key", "openai-env"): 5}
_KEY_ORIGIN = {("api_key", "option"): "--deepseek-api-key", ("api_key", "env"): "$DEEPSEEK_API_KEY",
               ("api_key", "openai-env"): "$OPENAI_API_KEY"}


def _api_key(values: dict[str, Any], sources: dict[str, str]) -> ApiKey | None:
    """The key in force, as an `ApiKey`; a key file is read here, once. Messages never hold the key."""
    if sources.get("api_key") == "option" and sources.get("api_key_file") == "option":
        raise SettingsError("give --deepseek-api-key or --deepseek-api-key-file, not both")
    given = [(name, sources[name]) for name in ("api_key", "api_key_file") if name in values and name in sources]
    if not given:
        return None
    name, source = min(given, key=lambda item: _KEY_RANK[item])
    if name == "api_key_file":
        path = values["api_key_file"]
        return _key_or_error(read_key_file(path), f"the API key file {path}")
    return _key_or_error(str(values["api_key"]).strip(), _KEY_ORIGIN[(name, source)])


def read_key_file(path: Path) -> str:
    """The stripped text of an API key file (SettingsError when it cannot be read; never its content)."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise SettingsError(f"the API key file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(f"cannot read the API key file {path}: {exc.strerror or type(exc).__name__}") from None


def _key_or_error(text: str, origin: str) -> ApiKey:
    if not text:
        raise SettingsError(f"{origin} is empty")
    try:
        return ApiKey(text)
    except ValueError as exc:
        raise SettingsError(f"{origin}: {exc}") from None


def _check_tls(values: dict[str, Any]) -> None:
    """A CA bundle must exist and load; it and --deepseek-insecure contradict each other."""
    bundle: Path | None = values.get("ca_bundle")
    if bundle is None:
        return
    if values.get("insecure"):
        raise SettingsError("give --deepseek-ca-bundle (verify against these CAs) or --deepseek-insecure "
                            "(verify nothing), not both")
    if not bundle.exists():
        raise SettingsError(f"--deepseek-ca-bundle {bundle} does not exist")
    try:
        TlsPolicy(ca_bundle=str(bundle)).ssl_context()
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise SettingsError(f"--deepseek-ca-bundle {bundle}: no CA certificate could be loaded ({exc})") from None


# ---------------------------------------------------------------------------------------------
# --endpoint PROFILE=URL: which endpoint each profile is measured against


def split_endpoint(value: str) -> tuple[str | None, str]:
    """`PROFILE=URL` → (PROFILE, URL); a bare URL → (None, URL).

    A URL may hold `=` in its query (`sim://fast?step_base_ms=8`) but always holds `://`: the text
    before the first `=` names a profile only when it has no `:` nor `/`.
    """
    value = value.strip()
    head, sep, tail = value.partition("=")
    if sep and head.strip() and ":" not in head and "/" not in head:
        if not tail.strip():
            raise SettingsError(f"--endpoint {value}: no URL after {head.strip()}=")
        return head.strip(), tail.strip()
    return None, value


@dataclass(frozen=True)
class EndpointPlan:
    """The endpoint URL of each selected profile, and the default URL of the others (the ad-hoc
    profile of a grid run without a thresholds file)."""

    by_profile: Mapping[str, str]
    default: str | None = None

    def url_for(self, profile: str) -> str | None:
        """The URL `profile` is measured against (None: no endpoint for it)."""
        return self.by_profile.get(profile, self.default)

    def urls(self) -> tuple[str, ...]:
        """Each distinct URL to open, once: the default (when a profile uses it, or none is
        selected), then the others in profile order."""
        used = list(self.by_profile.values())
        first = [self.default] if self.default is not None and (self.default in used or not used) else []
        return tuple(dict.fromkeys(first + used))

    def profiles_of(self, url: str) -> tuple[str, ...]:
        """The selected profiles measured against `url`."""
        return tuple(name for name, given in self.by_profile.items() if given == url)


@dataclass(frozen=True)
class EndpointArgs:
    """The --endpoint values split: `PROFILE=URL` pairs and bare URLs, as given."""

    named: tuple[tuple[str, str], ...] = ()
    bare: tuple[str, ...] = ()

    @classmethod
    def parse(cls, values: Sequence[str]) -> "EndpointArgs":
        """Split each value (see `split_endpoint`); a URL given twice counts once."""
        named: list[tuple[str, str]] = []
        bare: list[str] = []
        for value in values:
            profile, url = split_endpoint(value)
            if profile is None:
                bare.append(url)
            else:
                named.append((profile, url))
        return cls(tuple(dict.fromkeys(named)), tuple(dict.fromkeys(bare)))

    def profiles_named(self, known: Mapping[str, str | None]) -> list[str]:
        """The known profiles the values name: as `PROFILE=`, or by their `endpoint:` key equal to a
        bare URL (in the thresholds file's order). `known`: each profile's `endpoint:` key."""
        named = {profile for profile, _ in self.named}
        return [name for name, key in known.items() if name in named or (key is not None and key in self.bare)]

    def check(self, known: Mapping[str, str | None]) -> None:
        """Raise `SettingsError` for a `PROFILE=` naming no known profile, two URLs for one profile,
        or several bare URLs that match no profile's `endpoint:` (which profile is each for?)."""
        for profile, url in self.named:
            if profile not in known:
                raise SettingsError(f"--endpoint {profile}={url}: no profile {profile!r} "
                                    f"in the thresholds file; {describe_profiles(known)}")
        for profile in dict.fromkeys(name for name, _ in self.named):
            urls = [url for name, url in self.named if name == profile]
            key = known[profile]
            urls += [key] if key is not None and key in self.bare and key not in urls else []
            if len(urls) > 1:
                raise SettingsError(f"--endpoint gives profile {profile!r} two URLs ({' and '.join(urls)}); "
                                    f"{describe_profiles(known)}")
        loose = self._unmatched(known)
        if len(loose) > 1:
            raise SettingsError(f"--endpoint {' and '.join(loose)} match no profile's endpoint: key: say which profile "
                                f"each is for with --endpoint PROFILE=URL; {describe_profiles(known)}")

    def _unmatched(self, known: Mapping[str, str | None]) -> list[str]:
        keys = {key for key in known.values() if key is not None}
        return [url for url in self.bare if url not in keys]

    def plan(self, known: Mapping[str, str | None], selected: Sequence[str]) -> EndpointPlan:
        """Each selected profile's URL: its `PROFILE=URL`, else a bare URL equal to its `endpoint:`
        key, else the default (the one bare URL matching no key; or the only value, when it is bare),
        else its `endpoint:` key (None when it has none). Call `check` first."""
        loose = self._unmatched(known)
        default = loose[0] if loose else (self.bare[0] if len(self.bare) == 1 and not self.named else None)
        named = dict(self.named)
        by_profile: dict[str, str] = {}
        for name in selected:
            key = known.get(name)
            matched = key if key is not None and key in self.bare else None
            url = named.get(name) or matched or default or key
            if url is not None:
                by_profile[name] = url
        return EndpointPlan(by_profile, default)


def describe_profiles(known: Mapping[str, str | None]) -> str:
    """`profiles: a (endpoint: URL), b (no endpoint:)`, for the usage errors about endpoints."""
    if not known:
        return "no thresholds file names profiles (a bare --endpoint URL needs none)"
    shown = [f"{name} (endpoint: {key})" if key else f"{name} (no endpoint:)" for name, key in known.items()]
    return "profiles: " + ", ".join(shown)
