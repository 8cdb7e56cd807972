"""sim:// URLs, presets and content sources."""

from __future__ import annotations

import random

import pytest

from pytest_deepseek.sim.config import SimConfig, SimConfigError
from pytest_deepseek.sim.content import ContentError, Generation, RandomWordContent, load_content
from pytest_deepseek.sim.presets import PRESETS, get_preset, preset_names
from pytest_deepseek.sim.urls import is_sim_url, parse_sim_url, to_sim_url
from pytest_deepseek.sim.words import word_pool
from pytest_deepseek.tokenizers import embedded_tokenizer


def test_presets_have_their_shapes() -> None:
    assert set(preset_names()) >= {"deepseek-v3", "deepseek-r1", "deepseek-v3-mtp", "fast"}
    v3 = get_preset("deepseek-v3")
    assert (v3.model, v3.max_num_seqs, v3.step_base_ms) == ("deepseek-ai/DeepSeek-V3", 64, 20.0)
    r1 = get_preset("deepseek-r1")
    assert r1.model == "deepseek-ai/DeepSeek-R1" and r1.reasoning_tokens > 0
    assert get_preset("deepseek-v3-mtp").tokens_per_step == 2
    assert get_preset("fast").step_base_ms < 2


def test_parse_url_applies_overrides() -> None:
    config = parse_sim_url("sim://deepseek-v3?max_num_seqs=8&step_base_ms=5.5&content=answer_key"
                           "&content_key=/tmp/key.jsonl&content_accuracy=0.8")
    assert config.max_num_seqs == 8 and config.step_base_ms == 5.5 and config.content == "answer_key"
    assert dict(config.content_options) == {"key": "/tmp/key.jsonl", "accuracy": "0.8"}
    assert config.preset == "deepseek-v3" and config.model == "deepseek-ai/DeepSeek-V3"
    assert parse_sim_url("sim://fast") == PRESETS["fast"]
    assert is_sim_url("sim://fast") and not is_sim_url("http://localhost:8000/v1")


def test_url_round_trip() -> None:
    config = parse_sim_url("sim://deepseek-r1?fail_every=5&seed=3&content_mean_tokens=9")
    assert parse_sim_url(to_sim_url(config)) == config


def test_bad_preset_lists_presets_and_keys() -> None:
    with pytest.raises(SimConfigError) as info:
        parse_sim_url("sim://deepseek-v9")
    message = str(info.value)
    assert "'deepseek-v9'" in message
    assert all(name in message for name in preset_names())
    assert "max_num_seqs" in message and "tokens_per_step" in message


def test_bad_key_and_bad_value() -> None:
    with pytest.raises(SimConfigError, match=r"unknown sim option 'max_seqs'.*max_num_seqs"):
        parse_sim_url("sim://fast?max_seqs=4")
    with pytest.raises(SimConfigError, match="max_num_seqs='many': expected int"):
        parse_sim_url("sim://fast?max_num_seqs=many")
    with pytest.raises(SimConfigError, match="tokens_per_step must be >= 1"):
        parse_sim_url("sim://fast?tokens_per_step=0")


def test_config_json_round_trip() -> None:
    config = parse_sim_url("sim://fast?content_mean_tokens=4")
    assert SimConfig.from_json_dict(config.to_json_dict()) == config


def test_word_pool_round_trips_one_token_per_word() -> None:
    tok = embedded_tokenizer()
    pool = word_pool()
    assert len(pool) >= 1000
    rng = random.Random(1)
    for _ in range(20):
        words = rng.choices(pool, k=50)
        assert len(tok.encode("".join(words))) == 50
        assert tok.decode(tok.encode("".join(words))) == "".join(words)


def test_random_content_lengths() -> None:
    content = RandomWordContent(mean_tokens="5")
    rng = random.Random(0)
    forced = content.generate(prompt_text="p", messages=None, max_tokens=40, min_tokens=40, ignore_eos=True, rng=rng)
    assert len(forced.answer) == 40 and forced.reasoning == [] and forced.fail_status is None
    natural = [len(content.generate(prompt_text="p", messages=None, max_tokens=40, min_tokens=3, ignore_eos=False,
                                    rng=rng).answer) for _ in range(50)]
    assert all(3 <= n <= 40 for n in natural) and min(natural) < 40


class _Fixed:
    def __init__(self, word: str = " yes", status: str = "") -> None:
        self.word, self.status = word, int(status) if status else None

    def generate(self, **_: object) -> Generation:
        return Generation(answer=[self.word], fail_status=self.status)


def test_content_registry_and_module_class() -> None:
    assert isinstance(load_content("random", {"mean_tokens": "3"}), RandomWordContent)
    source = load_content(f"{__name__}:_Fixed", {"word": " no"})
    assert source.generate(prompt_text="", messages=None, max_tokens=1, min_tokens=0, ignore_eos=False,
                           rng=random.Random()).answer == [" no"]
    with pytest.raises(ContentError, match="unknown content source 'nope'"):
        load_content("nope")
    with pytest.raises(ContentError, match="rejected options"):
        load_content("random", {"colour": "blue"})


def test_compiled_chat_template_renders_like_the_tokenizer() -> None:
    from pytest_deepseek.sim.prompts import PromptCounter

    tok = embedded_tokenizer()
    counter = PromptCounter(tok)
    conversations = [
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"}],
    ]
    for messages in conversations:
        assert counter.render(messages) == tok.render_chat(messages)
