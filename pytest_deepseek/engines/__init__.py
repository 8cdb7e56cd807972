"""Real inference servers for integration runs: cached engine venvs, a tiny DeepSeek-V3, server processes.

Nothing here is imported by the plugin itself; `python -m pytest_deepseek.engines` starts a server by hand.
"""
