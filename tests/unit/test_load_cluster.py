"""--deepseek-load-cluster without a cluster: the option's values, and which nodes take load workers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.serving.ray_link import CLIENT_RESOURCE, capacity, client_nodes, worker_bundle
from pytest_deepseek.settings import RAY_INSTALL_HINT, Settings, SettingsError, resolve


def _settings(options: dict[str, Any], env: dict[str, str] | None = None) -> Settings:
    return resolve(lambda n: options.get(n), lambda n: None, environ=env or {}, rootdir=Path("/r"))


@pytest.fixture
def ray_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The option only checks that Ray can be imported (it never imports it): pretend it can."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "ray" else real(name, *a))


@pytest.mark.parametrize("address", ["auto", "ray://head.example:10001", "10.1.2.3:6379", "[::1]:6379",
                                     "ray://127.0.0.1:10001"])
def test_cluster_addresses_and_auto_workers(ray_installed: None, address: str) -> None:
    settings = _settings({"load_cluster": address})
    assert settings.load_cluster == address
    assert settings.load_workers is None  # auto: one per CPU of the client nodes
    assert _settings({"load_cluster": address, "load_workers": "3"}).load_workers == 3
    assert _settings({}).load_cluster is None and _settings({}).load_workers == 1


def test_cluster_from_the_environment(ray_installed: None) -> None:
    assert _settings({}, env={"DEEPSEEK_LOAD_CLUSTER": "auto"}).load_cluster == "auto"


@pytest.mark.parametrize("address", ["http://head:6379", "head", "ray://head", "head:port", "", "local"])
def test_a_bad_cluster_address_is_a_settings_error(ray_installed: None, address: str) -> None:
    with pytest.raises(SettingsError, match="must be auto, ray://HOST:PORT or HOST:PORT"):
        _settings({"load_cluster": address or " "})


def test_without_ray_the_option_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(SettingsError) as caught:
        _settings({"load_cluster": "auto"})
    assert RAY_INSTALL_HINT in str(caught.value) and "pytest-deepseek[ray]" in RAY_INSTALL_HINT


def _node(cpus: float, alive: bool = True, client: float | None = None) -> dict[str, Any]:
    resources: dict[str, float] = {"CPU": cpus, "memory": 1e9}
    if client is not None:
        resources[CLIENT_RESOURCE] = client
    return {"Alive": alive, "Resources": resources}


def test_without_marked_nodes_every_alive_node_is_a_client_node() -> None:
    nodes, marked = client_nodes([_node(8), _node(4), _node(16, alive=False)])
    assert not marked and len(nodes) == 2
    assert capacity(nodes, marked) == 12
    assert worker_bundle(marked) == {"CPU": 1.0}


def test_marked_nodes_are_the_client_nodes_and_bound_the_workers() -> None:
    nodes, marked = client_nodes([_node(64), _node(8, client=4), _node(2, client=6), _node(8, client=8, alive=False)])
    assert marked and len(nodes) == 2
    assert capacity(nodes, marked) == 4 + 2  # each node: the fewer of its CPUs and its client slots
    assert worker_bundle(marked) == {"CPU": 1.0, CLIENT_RESOURCE: 1.0}


def test_no_alive_node_holds_no_worker() -> None:
    nodes, marked = client_nodes([_node(8, alive=False)])
    assert nodes == [] and capacity(nodes, marked) == 0
