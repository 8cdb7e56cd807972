"""A simulated OpenAI-compatible engine: the embedded default endpoint and a source of known truth.

`sim://PRESET?key=value` URLs name a config (`parse_sim_url`); `start_sim` runs it as a
subprocess, `start_sim_thread` / `SimServer` in this process. With a truth path it logs, per
request, exactly which chunks it wrote and when (`read_truth`). `fault_<name>=<selector>` keys
inject faults on chosen requests (`faults.FAULT_NAMES`); the truth record names each one.
"""

from .config import SimConfig, SimConfigError
from .content import ContentSource, Generation, RandomWordContent
from .launcher import RunningSim, SimStartError, start_sim, start_sim_thread
from .presets import PRESETS, get_preset, preset_names
from .server import SimServer, ThreadedSim
from .truth import TruthRecord, read_truth
from .urls import is_sim_url, parse_sim_url

__all__ = [
    "PRESETS",
    "ContentSource",
    "Generation",
    "RandomWordContent",
    "RunningSim",
    "SimConfig",
    "SimConfigError",
    "SimServer",
    "SimStartError",
    "ThreadedSim",
    "TruthRecord",
    "get_preset",
    "is_sim_url",
    "parse_sim_url",
    "preset_names",
    "read_truth",
    "start_sim",
    "start_sim_thread",
]
