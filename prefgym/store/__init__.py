"""The preference store: segments, queries and judgments of a run in one SQLite file.

``PreferenceStore`` is the one class; private modules behind it hold the file
format, its transaction idiom and the ``meta`` table (``_file``), the functions of
each table (``_segments``, ``_queries`` with the leases, ``_judgments``), the
trainer's heartbeat (``_heartbeat``) and the records it hands out (``_records``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.store._file import (
        APPLICATION_ID,
        SCHEMA_VERSION,
        StoreError,
        decode_array,
        encode_array,
    )
    from prefgym.store._heartbeat import (
        BEAT_SECONDS,
        STALE_SECONDS,
        Heartbeat,
        TrainerState,
        TrainerStatus,
    )
    from prefgym.store._judgments import JudgedMeanwhile
    from prefgym.store._records import (
        Judgeable,
        Query,
        StoredJudgment,
        TrainingData,
    )
    from prefgym.store._store import PreferenceStore, training_data

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
