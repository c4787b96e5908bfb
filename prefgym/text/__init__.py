"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.text._grammar import (
        Grammar,
        is_nonterminal,
        words,
    )
    from prefgym.text._language import (
        FORBIDDEN,
        GRAMMAR,
        QUALITIES,
        THINGS,
        TOPICS,
    )
    from prefgym.text._segments import (
        is_text_segment,
        text_segment,
        text_summary,
    )
    from prefgym.text._tasks import (
        TASKS,
        ArithmeticTask,
        SentimentTask,
        TextTask,
        corpus,
        corrupt,
    )
    from prefgym.text._tokenizer import (
        EOS_TOKEN,
        PAD_TOKEN,
        GrammarCodec,
        TextCodec,
        codec_key,
        grammar_codec,
        train_tokenizer,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
