"""Several URLs for one deployment in the options and the thresholds file: --endpoint repeated for a
profile, a profile's endpoints:, an endpoints file, the routing policy and the URLs only woken up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_deepseek.serving.gate import routing_of
from pytest_deepseek.settings import EndpointArgs, ProfileUrls, SettingsError, resolve
from pytest_deepseek.thresholds import ThresholdsError, parse_thresholds


def make(options: dict | None = None, ini: dict | None = None, env: dict | None = None, root: Path = Path("/r")):
    options = options or {}
    ini = ini or {}
    return resolve(lambda n: options.get(n), lambda n: ini.get(n), environ=env or {}, rootdir=root,
                   invocation_dir=root)


def test_one_profile_named_twice_gets_two_replicas() -> None:
    settings = make({"endpoint": ["p=http://a/v1", "p=http://b/v1", "q=http://c/v1", "p=http://a/v1"]})
    known = {"p": None, "q": None}
    args = settings.endpoint_args()
    args.check(known)  # no longer a usage error
    plan = args.plan(known, ["p", "q"])
    assert plan.urls_for("p") == ("http://a/v1", "http://b/v1") and plan.urls_for("q") == ("http://c/v1",)
    assert plan.by_profile == {"p": "http://a/v1", "q": "http://c/v1"}  # the first replica is the profile's endpoint
    assert plan.urls() == ("http://a/v1", "http://b/v1", "http://c/v1")
    assert [plan.label_of(url) for url in plan.urls()] == ["p.1", "p.2", "q"]
    assert plan.role_of("http://b/v1") == "profile p, replica 2 of 2" and plan.role_of("http://c/v1") == "profile q"
    assert plan.profiles_of("http://b/v1") == ("p",)


def test_an_endpoints_file_lists_the_replicas_of_the_default_deployment(tmp_path: Path) -> None:
    listing = tmp_path / "ranks.txt"
    listing.write_text("# the ranks of one deployment\n\nhttp://r0:8000/v1\n  http://r1:8000/v1   # rack 2\n"
                       "q=sim://fast?seed=3\n")
    settings = make({"endpoints_file": "ranks.txt"}, root=tmp_path)
    assert settings.endpoints_file == listing and settings.endpoint == ()
    assert settings.endpoints_listed == ("http://r0:8000/v1", "http://r1:8000/v1", "q=sim://fast?seed=3")
    assert settings.endpoint_given and settings.gate_requested
    plan = settings.endpoint_args().plan({"p": None, "q": None}, ["p", "q"])
    assert plan.urls_for("p") == ("http://r0:8000/v1", "http://r1:8000/v1")
    assert plan.urls_for("q") == ("sim://fast?seed=3",)
    assert plan.urls_for("adhoc") == ("http://r0:8000/v1", "http://r1:8000/v1")  # a grid run without a file
    # a bare --endpoint beside the file is the first of the default replicas
    both = make({"endpoint": ["http://lb/v1"], "endpoints_file": str(listing)})
    assert both.endpoint_args().plan({}, []).default_urls == ("http://lb/v1", "http://r0:8000/v1", "http://r1:8000/v1")
    assert make(env={"DEEPSEEK_ENDPOINTS_FILE": str(listing)}).endpoints_listed == settings.endpoints_listed


@pytest.mark.parametrize("text, says", [
    ("http://a/v1\nlocalhost:8000\n", "ranks.txt:2: 'localhost:8000' is not a URL"),
    ("u:secret@node-a:8000/v1\n", "ranks.txt:1: '***@node-a:8000/v1' is not a URL"),
    ("http://a/v1\n\n# c\np=\n", "ranks.txt:4: --endpoint p=: no URL after p="),
    ("# nothing but comments\n\n", "ranks.txt lists no URL"),
], ids=["not-a-url", "credentials-masked", "empty-profile", "no-url"])
def test_a_bad_endpoints_file_names_the_file_and_the_line(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "ranks.txt").write_text(text)
    with pytest.raises(SettingsError, match=re.escape(says)):
        make({"endpoints_file": "ranks.txt"}, root=tmp_path)


def test_a_missing_endpoints_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--deepseek-endpoints-file: cannot read .*nowhere.txt"):
        make({"endpoints_file": "nowhere.txt"}, root=tmp_path)


def test_a_profile_named_in_the_file_must_exist(tmp_path: Path) -> None:
    (tmp_path / "ranks.txt").write_text("ghost=http://a/v1\n")
    args = make({"endpoints_file": "ranks.txt"}, root=tmp_path).endpoint_args()
    with pytest.raises(SettingsError, match="no profile 'ghost'"):
        args.check({"p": None})


THRESHOLDS = """\
version: 1
profiles:
  dp2:
    nodes: 2
    endpoints:
      - http://node-a:8000/v1
      - http://node-b:8000/v1
    routing: least-outstanding
  proxied:
    endpoint: http://proxy:8000/v1
    warmup_endpoints: [http://rank-0:23333/v1, http://rank-1:23333/v1]
"""


def test_the_profile_lists_its_replicas_its_routing_and_its_warm_up_urls() -> None:
    profiles = parse_thresholds(THRESHOLDS).profiles
    dp2, proxied = profiles["dp2"], profiles["proxied"]
    assert dp2.endpoints == ("http://node-a:8000/v1", "http://node-b:8000/v1") and dp2.routing == "least-outstanding"
    assert dp2.nodes == 2 and dp2.endpoint is None
    assert proxied.warmup_endpoints == ("http://rank-0:23333/v1", "http://rank-1:23333/v1")
    known = {"dp2": dp2.endpoints[0], "proxied": proxied.endpoint}
    own = {name: ProfileUrls(p.endpoints, p.warmup_endpoints) for name, p in profiles.items()}
    # a bare --endpoint equal to the profile's first URL selects it, with all its replicas
    args = EndpointArgs.parse(["http://node-a:8000/v1"])
    assert args.profiles_named(known) == ["dp2"]
    plan = args.plan(known, ["dp2"], own)
    assert plan.urls_for("dp2") == dp2.endpoints and plan.warmup_for("dp2") == ()
    # a profile that gets no URL on the command line keeps its own
    plan = EndpointArgs.parse(["proxied=http://proxy:8000/v1"]).plan(known, ["dp2", "proxied"], own)
    assert plan.urls_for("dp2") == dp2.endpoints
    assert plan.urls_for("proxied") == ("http://proxy:8000/v1",) and plan.warmup_for("proxied") == proxied.warmup_endpoints
    assert plan.warmup_urls() == proxied.warmup_endpoints
    assert plan.label_of("http://rank-1:23333/v1") == "proxied.warmup2"
    assert plan.role_of("http://rank-1:23333/v1") == "profile proxied, warm-up endpoint 2 of 2"


@pytest.mark.parametrize("profile, says", [
    ("endpoint: http://a/v1\n    endpoints: [http://b/v1]", ":5: profiles.p.endpoints: give endpoint: (one URL) or "
                                                               "endpoints:"),
    ("endpoints: [http://a/v1, node-b:8000]", ":4: profiles.p.endpoints[1]: expected a URL"),
    ("warmup_endpoints: []", ":4: profiles.p.warmup_endpoints: expected at least 1 item"),
    ("routing: fastest", "'fastest' is not one of round-robin, least-outstanding"),
], ids=["endpoint-and-endpoints", "not-a-url", "empty", "unknown-routing"])
def test_bad_replica_keys_name_the_line_and_the_key(profile: str, says: str) -> None:
    text = f"version: 1\nprofiles:\n  p:\n    {profile}\n"
    with pytest.raises(ThresholdsError, match=re.escape(says)):
        parse_thresholds(text, Path("t.yaml"))


def test_routing_follows_the_one_precedence() -> None:
    profiles = parse_thresholds(THRESHOLDS).profiles
    assert routing_of(profiles["dp2"], make()) == "least-outstanding"  # the profile's
    assert routing_of(profiles["proxied"], make()) == "round-robin"  # the default
    assert routing_of(profiles["dp2"], make({"routing": "round-robin"})) == "round-robin"  # the command line
    assert routing_of(profiles["proxied"], make(ini={"deepseek_routing": "least-outstanding"})) == "least-outstanding"
    with pytest.raises(SettingsError, match="--deepseek-routing must be round-robin or least-outstanding"):
        make({"routing": "random"})


def test_warm_up_urls_from_the_command_line_beat_the_profile() -> None:
    profiles = parse_thresholds(THRESHOLDS).profiles
    known = {"dp2": profiles["dp2"].endpoints[0], "proxied": profiles["proxied"].endpoint}
    own = {name: ProfileUrls(p.endpoints, p.warmup_endpoints) for name, p in profiles.items()}
    settings = make({"endpoint": ["proxied=http://proxy:8000/v1", "dp2=http://node-a:8000/v1"],
                     "warmup_endpoint": ["proxied=http://r9:1/v1", "http://r8:1/v1", "http://node-a:8000/v1"]})
    plan = settings.endpoint_args().plan(known, ["dp2", "proxied"], own)
    assert plan.warmup_for("proxied") == ("http://r9:1/v1",)  # named for it
    assert plan.warmup_for("dp2") == ("http://r8:1/v1",)  # the bare ones; a URL it is measured on is not woken twice
    env = make(env={"DEEPSEEK_WARMUP_ENDPOINT": "http://r0:1/v1 http://r1:1/v1"})  # e.g. "$(cat ranks.txt)"
    assert env.warmup_endpoint == ("http://r0:1/v1", "http://r1:1/v1")
    with pytest.raises(SettingsError, match="--deepseek-warmup-endpoint 'rank-0:23333' is not a URL"):
        make({"warmup_endpoint": ["rank-0:23333"]})
