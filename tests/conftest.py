"""Shared test configuration: pytester for running the plugin as users do."""

pytest_plugins = ["pytester"]
