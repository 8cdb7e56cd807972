"""Counters of the simulator and their Prometheus text form (`sim:*` and vLLM's `vllm:*` names)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .faults import FAULT_NAMES


@dataclass
class SimMetrics:
    """Running totals, updated as tokens are emitted and requests end."""

    prompt_tokens: int = 0  # counted when a prompt's prefill completes
    generation_tokens: int = 0  # counted as tokens are emitted
    success: Counter[str] = field(default_factory=Counter)  # by finish reason
    failures: Counter[str] = field(default_factory=Counter)  # by error kind
    faults: Counter[str] = field(default_factory=Counter)  # injected faults, by fault name
    running: int = 0
    waiting: int = 0
    engine_steps: int = 0
    lateness_max_s: float = 0.0  # worst delay of a step's emission behind its scheduled time

    def render(self, model: str) -> str:
        """Prometheus text exposition (version 0.0.4)."""
        label = f'model_name="{model}"'
        out: list[str] = []

        def counter(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} counter")
            out.extend(f"{name}{{{labels}}} {value:.1f}" for labels, value in samples)

        def gauge(name: str, help_text: str, labels: str, value: float) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            out.append(f"{name}{{{labels}}} {value:.1f}")

        for prefix, extra in (("sim", ""), ("vllm", 'engine="0",')):
            labels = extra + label
            counter(f"{prefix}:prompt_tokens_total", "Prefilled prompt tokens.", [(labels, self.prompt_tokens)])
            counter(f"{prefix}:generation_tokens_total", "Emitted generation tokens.",
                    [(labels, self.generation_tokens)])
            reasons = sorted(set(self.success) | {"length", "stop"})
            counter(f"{prefix}:request_success_total", "Requests finished normally.",
                    [(f'{labels},finished_reason="{r}"', self.success[r]) for r in reasons])
            gauge(f"{prefix}:num_requests_running", "Sequences in the batch.", labels, self.running)
            gauge(f"{prefix}:num_requests_waiting", "Sequences queued behind the batch limit.", labels,
                  self.waiting)
        counter("sim:engine_steps_total", "Engine steps run.", [(label, self.engine_steps)])
        out.append("# HELP sim:step_lateness_max_seconds Worst delay of a step's chunks behind the schedule.")
        out.append("# TYPE sim:step_lateness_max_seconds gauge")
        out.append(f"sim:step_lateness_max_seconds{{{label}}} {self.lateness_max_s:.6f}")
        kinds = sorted(self.failures) or ["http_500"]
        counter("sim:request_failure_total", "Requests that failed (injected or invalid).",
                [(f'{label},kind="{k}"', self.failures[k]) for k in kinds])
        names = list(FAULT_NAMES) + sorted(set(self.faults) - set(FAULT_NAMES))
        counter("sim:faults_injected_total", "Faults injected, by fault name.",
                [(f'{label},fault="{name}"', self.faults[name]) for name in names])
        return "\n".join(out) + "\n"
