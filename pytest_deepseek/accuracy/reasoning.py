"""Keeping the scorer away from the thinking of reasoning models, per backend.

DeepSeek-R1 answers as `<think>…</think>answer`, but its chat template pre-fills `<think>`, so the
text often carries only `…</think>answer`; servers with a reasoning parser move the thinking to
`reasoning_content` instead. What each tool needs:

- evalscope strips paired tags only and reads `reasoning_content` apart from the answer: add the
  filter `remove_until: '</think>'` to every dataset (a no-op when the tag is absent).
- OpenCompass's `OpenAISDK` returns `reasoning_content + '</think>' + content`: the model needs
  `pred_postprocessor=extract_non_reasoning_content`.
- lm-eval: `think_end_token='</think>'` in the model arguments, but only `local-chat-completions`
  honours it (`local-completions` hands the thinking to the filters); so the answer regexes of the
  task files also skip everything up to the last closing tag. It ignores `reasoning_content`.
"""

from __future__ import annotations

import re

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_PAIR = re.compile(re.escape(THINK_OPEN) + r".*?" + re.escape(THINK_CLOSE), re.DOTALL)

EVALSCOPE_FILTERS = {"remove_until": THINK_CLOSE}
OPENCOMPASS_POSTPROCESSOR = "extract_non_reasoning_content"
LM_EVAL_MODEL_ARGS = {"think_end_token": THINK_CLOSE}
# Prefix for an answer regex: skip up to the last closing tag when there is one.
LM_EVAL_SKIP_THINKING = r"(?s)(?:.*" + re.escape(THINK_CLOSE) + r")?.*?"


def strip_thinking(text: str) -> str:
    """The answer part of `text`: paired blocks removed, then anything up to a lone closing tag."""
    text = _PAIR.sub("", text)
    if THINK_CLOSE in text:
        text = text.rsplit(THINK_CLOSE, 1)[1]
    return text.strip()
