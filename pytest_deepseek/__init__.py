"""pytest-deepseek: a pytest release gate for DeepSeek deployments."""

__version__ = "0.1.0"
