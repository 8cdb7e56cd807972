"""Option resolution: command line over environment over ini; bad values are clear errors."""

import math
from pathlib import Path

import pytest

from pytest_deepseek.settings import SettingsError, parse_duration, resolve


def make(options=None, ini=None, env=None, root=Path("/r")):
    options = options or {}
    ini = ini or {}
    return resolve(lambda n: options.get(n), lambda n: ini.get(n), environ=env or {}, rootdir=root)


def test_defaults():
    s = make()
    assert s.thresholds == Path("/r/thresholds.yaml")
    assert s.results_dir == Path("/r/deepseek-results")
    assert s.endpoint == () and s.api_key is None and not s.early_stop


def test_precedence_command_line_then_env_then_ini():
    assert make({"model": "cli"}, {"deepseek_model": "ini"}).model == "cli"
    assert make({}, {"deepseek_model": "ini"}).model == "ini"
    assert make({}, {"deepseek_endpoint": ["http://ini/v1"]}, {"DEEPSEEK_ENDPOINT": "http://env/v1"}).endpoint == ("http://env/v1",)
    assert make({"endpoint": ["sim://x"]}, {}, {"DEEPSEEK_ENDPOINT": "http://env/v1"}).endpoint == ("sim://x",)


def test_one_precedence_down_to_the_profile_and_the_default():
    # command line > ini > the profile's values (most specific first) > the option's default
    assert make({"api": "chat"}, {"deepseek_api": "completions"}).layered("api", "completions") == "chat"
    assert make({}, {"deepseek_api": "chat"}).layered("api", "completions") == "chat"
    assert make().layered("api", None, "chat") == "chat"
    assert make().layered("nodes", 4, 2) == 4
    assert make().layered("nodes") is None
    assert make({"warmup": "0"}).layered("warmup", 2) == 0
    assert make().layered("results_dir") == Path("/r/deepseek-results")
    # a boolean option only switches a behaviour on
    assert make({"early_stop": True}).layered("early_stop", False) is True
    assert make().layered("early_stop", True) is True
    assert make().layered("early_stop") is False


def test_gate_requested_only_by_gate_options():
    assert not make().gate_requested
    assert not make(env={"DEEPSEEK_API_KEY": "sk"}).gate_requested
    assert make({"profile": ["x"]}).gate_requested
    assert make({"endpoint": ["sim://x"]}).gate_requested
    assert make({"training_log": ["a.log"]}).gate_requested


def test_api_key_from_environment_never_from_ini():
    assert make(env={"OPENAI_API_KEY": "sk-o"}).api_key.reveal() == "sk-o"
    assert make(env={"DEEPSEEK_API_KEY": "sk-d", "OPENAI_API_KEY": "sk-o"}).api_key.reveal() == "sk-d"
    assert make({"api_key": "sk-cli"}, env={"DEEPSEEK_API_KEY": "sk-d"}).api_key.reveal() == "sk-cli"
    assert make(ini={"deepseek_api_key": "sk-ini"}).api_key is None


def test_grid_lists():
    s = make({"input_len": ["256,512"], "output_len": ["128", "512,1024"], "request_rate": ["1.5,inf"]})
    assert s.input_len == (256, 512) and s.output_len == (128, 512, 1024)
    assert s.request_rate[0] == 1.5 and math.isinf(s.request_rate[1])
    assert s.adhoc_grid


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api": "grpc"}, "--deepseek-api must be completions or chat"),
        ({"input_len": ["12,x"]}, "--deepseek-input-len"),
        ({"input_len": ["0"]}, "positive"),
        ({"concurrency": ["4"], "request_rate": ["2"]}, "not both"),
        ({"nodes": "-2"}, "--deepseek-nodes must be a positive whole number"),
        ({"dataset": "wiki"}, "--deepseek-dataset must be"),
        ({"follow_timeout": "6 hours"}, "cannot read duration"),
        ({"stall_timeout": "-1"}, "--deepseek-stall-timeout must be positive"),
        ({"first_byte_timeout": "0"}, "--deepseek-first-byte-timeout must be positive"),
        ({"connect_timeout": "soon"}, "--deepseek-connect-timeout: cannot read"),
        ({"session_deadline": "-5m"}, "--deepseek-session-deadline must be positive"),
        ({"session_deadline": "a day"}, "cannot read duration"),
    ],
)
def test_bad_values(options, message):
    with pytest.raises(SettingsError, match=message):
        make(options)


def test_deadline_options_from_command_line_and_ini():
    s = make({"connect_timeout": "3", "request_timeout": "7200"}, {"deepseek_stall_timeout": "45",
                                                                   "deepseek_session_deadline": "6h"})
    assert (s.connect_timeout, s.first_byte_timeout, s.stall_timeout, s.request_timeout) == (3.0, None, 45.0, 7200.0)
    assert s.session_deadline == 21600.0 and make({"session_deadline": "90"}).session_deadline == 90.0
    assert make().session_deadline is None and make().request_timeout is None  # the scenario's or the default


def test_durations():
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800 and parse_duration("6h") == 21600
