"""Options resolved once into a frozen `Settings` object.

Precedence, for every option: command line, then environment variable (where one exists), then
the ini value, then the default. Bad values raise `SettingsError` with a clear message; the plugin
turns that into `pytest.UsageError`.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .accuracy.spec import ACCURACY_BACKENDS
from .credentials import ApiKey
from .serving.spec import APIS, DATASETS, DEFAULT_DEADLINES, DEFAULT_ROUTING, ROUTING_POLICIES
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
               "against its own endpoint (a hardware matrix); several URLs for one profile are replicas of "
               "one deployment, the client routes requests over them.", kind="list", env="DEEPSEEK_ENDPOINT",
               metavar="URL"),
    OptionSpec("endpoints_file", "File of endpoint URLs, one per line (URL or PROFILE=URL; # comments): "
               "its bare URLs are the replicas of one deployment, measured together with no proxy in front.",
               env="DEEPSEEK_ENDPOINTS_FILE", metavar="PATH"),
    OptionSpec("routing", f"How requests are spread over the replicas of a deployment: {_one_of(ROUTING_POLICIES)} "
               f"(default: the profile's routing:, else {DEFAULT_ROUTING}).", metavar="POLICY",
               choices=ROUTING_POLICIES),
    OptionSpec("warmup_endpoint", "URL only woken up (one request) before each scenario's measured phase, while "
               "the measured requests go to the endpoint (a proxy in front of it). Repeatable, URL or "
               "PROFILE=URL (default: the profile's warmup_endpoints:).", kind="list",
               env="DEEPSEEK_WARMUP_ENDPOINT", metavar="URL"),
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
    OptionSpec("load_workers", "Local processes that send a serving scenario's load, each with its own event "
               "loop and connections, merged as one client: a number, or auto (one per CPU this process may "
               "use, shared among pytest-xdist workers). Never more than the closed loop's clients; a batch scenario uses one. Default 1.",
               env="DEEPSEEK_LOAD_WORKERS", metavar="N|auto"),
    OptionSpec("load_cluster", "Ray cluster whose client nodes send the serving load (load workers as Ray actors, "
               "their clocks aligned with this process's): auto, ray://HOST:PORT or a GCS HOST:PORT. Needs the ray "
               "extra. With it --deepseek-load-workers defaults to auto (one per CPU of the client nodes).",
               env="DEEPSEEK_LOAD_CLUSTER", metavar="ADDR"),
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
    endpoints_file: Path | None = None
    endpoints_listed: tuple[str, ...] = field(default=(), repr=False)  # the endpoints file's values, in order
    routing: str | None = None
    warmup_endpoint: tuple[str, ...] = field(default=(), repr=False)
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
    load_workers: int | None = 1  # None: auto (one per usable CPU)
    load_cluster: str | None = None  # a Ray cluster address: the load workers run on its client nodes
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
        return bool(self.endpoint_given or self.profile or self.thresholds_explicit or self.training_log
                    or self.train_cmd or self.eval_results or self.adhoc_grid or self.resume)

    @property
    def endpoint_given(self) -> bool:
        """True when --endpoint or --deepseek-endpoints-file names an endpoint to measure."""
        return bool(self.endpoint or self.endpoints_listed)

    def endpoint_args(self) -> "EndpointArgs":
        """The endpoint values given (--endpoint, the endpoints file, --deepseek-warmup-endpoint), split."""
        return EndpointArgs.parse(self.endpoint, listed=self.endpoints_listed, warmup=self.warmup_endpoint)

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
    if "load_workers" in values:
        values["load_workers"] = _load_workers(values["load_workers"])
    if "load_cluster" in values:
        values["load_cluster"] = _load_cluster(values["load_cluster"])
        values.setdefault("load_workers", None)  # auto: one per CPU of the client nodes
    for name in ("thresholds", "results_dir", "api_key_file", "ca_bundle", "resume", "html", "endpoints_file"):
        if name in values:
            path = Path(values[name]).expanduser()
            outside = sources.get(name) in ("option", "env")
            base = invocation_dir if outside and invocation_dir is not None else rootdir
            if not path.is_absolute() and base is not None:
                path = base / path
            values[name] = path
    if "endpoints_file" in values:
        values["endpoints_listed"] = read_endpoints_file(values["endpoints_file"])
    # an empty `PROFILE=` or a warm-up value that is no URL is an error now, not at first use
    EndpointArgs.parse(values.get("endpoint", ()), listed=values.get("endpoints_listed", ()),
                       warmup=values.get("warmup_endpoint", ()))
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
def _load_workers(text: str) -> int | None:
    """--deepseek-load-workers: a positive number, or auto (None)."""
    if text.strip().lower() == "auto":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise SettingsError(f"--deepseek-load-workers must be a positive number or auto, got {text!r}")
    return count


RAY_INSTALL_HINT = 'pip install "pytest-deepseek[ray]"'
_CLUSTER_ADDRESS = re.compile(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")


def _load_cluster(text: str) -> str:
    """--deepseek-load-cluster: auto, ray://HOST:PORT or HOST:PORT, with Ray installed (not imported here)."""
    address = text.strip()
    if address != "auto" and not _CLUSTER_ADDRESS.fullmatch(address):
        raise SettingsError(f"--deepseek-load-cluster must be auto, ray://HOST:PORT or HOST:PORT, got {text!r}")
    if importlib.util.find_spec("ray") is None:
        raise SettingsError(f"--deepseek-load-cluster needs Ray, which is not installed: {RAY_INSTALL_HINT}")
    return address


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


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def is_url(text: str) -> bool:
    """True for `scheme://...` text with no space (http, https, sim)."""
    return _URL.fullmatch(text.strip()) is not None


def _shown(value: str) -> str:
    """A value that is no URL, as an error may quote it: credentials before an `@` masked."""
    return re.sub(r"[^\s/@]+@", "***@", value)


def read_endpoints_file(path: Path) -> tuple[str, ...]:
    """The values of an endpoints file: one `URL` or `PROFILE=URL` per line; blank lines and `#`
    comments (a whole line, or after a space) are skipped. An unreadable file, a line that is no URL
    or a file with none is a `SettingsError` naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"--deepseek-endpoints-file: cannot read {path}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if not value:
            continue
        try:
            _, url = split_endpoint(value)
        except SettingsError as exc:
            raise SettingsError(f"--deepseek-endpoints-file {path}:{number}: {exc}") from None
        if not is_url(url):
            raise SettingsError(f"--deepseek-endpoints-file {path}:{number}: {_shown(value)!r} is not a URL "
                                "(one per line: http://host:port/v1, sim://NAME, or PROFILE=URL)")
        values.append(value)
    if not values:
        raise SettingsError(f"--deepseek-endpoints-file {path} lists no URL")
    return tuple(values)


@dataclass(frozen=True)
class ProfileUrls:
    """The URLs a profile's own keys give besides `endpoint:`: `endpoints:` (the replicas of one
    deployment) and `warmup_endpoints:` (URLs only woken up before measuring)."""

    replicas: tuple[str, ...] = ()
    warmup: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointPlan:
    """The endpoint URLs of each selected profile (several: replicas of one deployment, the client
    routes over them), the default URLs of the others (the ad-hoc profile of a grid run without a
    thresholds file), and the URLs each only wakes up before measuring."""

    deployments: Mapping[str, tuple[str, ...]]
    default_urls: tuple[str, ...] = ()
    warmups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_warmup: tuple[str, ...] = ()

    @property
    def by_profile(self) -> dict[str, str]:
        """Each selected profile's endpoint URL (the first of its replicas)."""
        return {name: urls[0] for name, urls in self.deployments.items()}

    @property
    def default(self) -> str | None:
        """The default endpoint URL (the first of the default replicas), if any."""
        return self.default_urls[0] if self.default_urls else None

    def urls_for(self, profile: str) -> tuple[str, ...]:
        """The URLs `profile` is measured on (empty: no endpoint for it)."""
        return self.deployments.get(profile, self.default_urls)

    def url_for(self, profile: str) -> str | None:
        """The URL `profile` is measured against (None: no endpoint for it)."""
        urls = self.urls_for(profile)
        return urls[0] if urls else None

    def warmup_for(self, profile: str) -> tuple[str, ...]:
        """The URLs only woken up before `profile` is measured."""
        return self.warmups.get(profile, ()) if profile in self.deployments else self.default_warmup

    def _default_used(self) -> bool:
        used = {url for urls in self.deployments.values() for url in urls}
        return bool(self.default_urls) and (self.default_urls[0] in used or not self.deployments)

    def urls(self) -> tuple[str, ...]:
        """Each distinct URL measured on, once: the default's (when a profile uses them, or none is
        selected), then the others in profile order."""
        first = list(self.default_urls) if self._default_used() else []
        return tuple(dict.fromkeys(first + [url for urls in self.deployments.values() for url in urls]))

    def warmup_urls(self) -> tuple[str, ...]:
        """Each distinct URL only woken up (and not measured on), once."""
        first = list(self.default_warmup) if self._default_used() else []
        woken = dict.fromkeys(first + [url for urls in self.warmups.values() for url in urls])
        return tuple(url for url in woken if url not in self.urls())

    def profiles_of(self, url: str) -> tuple[str, ...]:
        """The selected profiles measured on `url` or waking it."""
        return tuple(name for name, urls in self.deployments.items() if url in urls or url in self.warmup_for(name))

    def label_of(self, url: str) -> str:
        """A short name for `url` in test ids and folder names: its profiles joined by "+" ("default"
        without one), then `.N` when it is replica N of several, or `.warmupN` when only woken up."""
        profiles = self.profiles_of(url)
        base = "+".join(profiles) if profiles else "default"
        urls = self.urls_for(profiles[0]) if profiles else self.default_urls
        woken = self.warmup_for(profiles[0]) if profiles else self.default_warmup
        if url in urls and len(urls) > 1:
            return f"{base}.{urls.index(url) + 1}"
        return f"{base}.warmup{woken.index(url) + 1}" if url in woken else base

    def role_of(self, url: str) -> str:
        """`url`'s place in the plan, for messages: `profile a, replica 2 of 3`, `profile a, warm-up
        endpoint 1 of 2`, `profile a`, or `the default endpoint`."""
        profiles = self.profiles_of(url)
        owner = f"profile {'+'.join(profiles)}" if profiles else "the default endpoint"
        urls = self.urls_for(profiles[0]) if profiles else self.default_urls
        woken = self.warmup_for(profiles[0]) if profiles else self.default_warmup
        if url in urls and len(urls) > 1:
            return f"{owner}, replica {urls.index(url) + 1} of {len(urls)}"
        return f"{owner}, warm-up endpoint {woken.index(url) + 1} of {len(woken)}" if url in woken else owner


def _split_values(values: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    named: list[tuple[str, str]] = []
    bare: list[str] = []
    for value in values:
        profile, url = split_endpoint(value)
        if profile is None:
            bare.append(url)
        else:
            named.append((profile, url))
    return named, bare


@dataclass(frozen=True)
class EndpointArgs:
    """The endpoint values split, as given: --endpoint `PROFILE=URL` pairs (the endpoints file's too)
    and bare URLs, the endpoints file's bare URLs (the replicas of the default deployment), and the
    --deepseek-warmup-endpoint values."""

    named: tuple[tuple[str, str], ...] = ()
    bare: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    warmup_named: tuple[tuple[str, str], ...] = ()
    warmup_bare: tuple[str, ...] = ()

    @classmethod
    def parse(cls, values: Sequence[str], *, listed: Sequence[str] = (), warmup: Sequence[str] = ()
              ) -> "EndpointArgs":
        """Split each value (see `split_endpoint`); a URL given twice counts once. A warm-up value
        that is no URL is a `SettingsError`."""
        named, bare = _split_values(values)
        file_named, file_bare = _split_values(listed)
        warm_named, warm_bare = _split_values(warmup)
        for url in [url for _, url in warm_named] + warm_bare:
            if not is_url(url):
                raise SettingsError(f"--deepseek-warmup-endpoint {_shown(url)!r} is not a URL (http://host:port/v1 or "
                                    "sim://NAME)")
        return cls(tuple(dict.fromkeys(named + file_named)), tuple(dict.fromkeys(bare)), tuple(dict.fromkeys(file_bare)),
                   tuple(dict.fromkeys(warm_named)), tuple(dict.fromkeys(warm_bare)))

    def profiles_named(self, known: Mapping[str, str | None]) -> list[str]:
        """The known profiles the values name: as `PROFILE=`, or by their `endpoint:` key equal to a
        bare URL (in the thresholds file's order). `known`: each profile's `endpoint:` key."""
        named = {profile for profile, _ in self.named}
        return [name for name, key in known.items() if name in named or (key is not None and key in self.bare)]

    def check(self, known: Mapping[str, str | None]) -> None:
        """Raise `SettingsError` for a `PROFILE=` naming no known profile, or several bare URLs that
        match no profile's `endpoint:` (which profile is each for?)."""
        for option, pairs in (("--endpoint", self.named), ("--deepseek-warmup-endpoint", self.warmup_named)):
            for profile, url in pairs:
                if profile not in known:
                    raise SettingsError(f"{option} {profile}={_shown(url)}: no profile {profile!r} "
                                        f"in the thresholds file; {describe_profiles(known)}")
        loose = [_shown(url) for url in self._unmatched(known)]
        if len(loose) > 1:
            raise SettingsError(f"--endpoint {' and '.join(loose)} match no profile's endpoint: key: say which profile "
                                f"each is for with --endpoint PROFILE=URL (several for one profile are its "
                                f"replicas); {describe_profiles(known)}")

    def _unmatched(self, known: Mapping[str, str | None]) -> list[str]:
        keys = {key for key in known.values() if key is not None}
        return [url for url in self.bare if url not in keys]

    def plan(self, known: Mapping[str, str | None], selected: Sequence[str],
             own: Mapping[str, ProfileUrls] | None = None) -> EndpointPlan:
        """Each selected profile's URLs: its `PROFILE=URL` values (several: its replicas), else its
        own keys when a bare URL equals its `endpoint:` key, else the default (the one bare URL matching
        no key, or the only value when it is bare; with the endpoints file's bare URLs as its
        replicas), else its own keys (`own`: its `endpoints:` and `warmup_endpoints:`; `known`: its
        `endpoint:`, or the first of its `endpoints:`). URLs only woken up: its
        --deepseek-warmup-endpoint PROFILE=URL values, else the bare ones, else its `warmup_endpoints:`.
        Call `check` first."""
        own = own or {}
        loose = self._unmatched(known)
        first = loose[0] if loose else (self.bare[0] if len(self.bare) == 1 and not self.named else None)
        default = tuple(dict.fromkeys(([first] if first is not None else []) + list(self.listed)))
        deployments: dict[str, tuple[str, ...]] = {}
        warmups: dict[str, tuple[str, ...]] = {}
        for name in selected:
            key = known.get(name)
            keyed = own.get(name, ProfileUrls()).replicas or ((key,) if key is not None else ())
            given = tuple(url for profile, url in self.named if profile == name)
            urls = given or (keyed if key is not None and key in self.bare else ()) or default or keyed
            if urls:
                deployments[name] = urls
            woken = (tuple(url for profile, url in self.warmup_named if profile == name) or self.warmup_bare
                     or own.get(name, ProfileUrls()).warmup)
            if any(url not in urls for url in woken):
                warmups[name] = tuple(url for url in woken if url not in urls)
        return EndpointPlan(deployments, default, warmups, tuple(url for url in self.warmup_bare if url not in default))


def describe_profiles(known: Mapping[str, str | None]) -> str:
    """`profiles: a (endpoint: URL), b (no endpoint:)`, for the usage errors about endpoints."""
    if not known:
        return "no thresholds file names profiles (a bare --endpoint URL needs none)"
    shown = [f"{name} (endpoint: {key})" if key else f"{name} (no endpoint:)" for name, key in known.items()]
    return "profiles: " + ", ".join(shown)
