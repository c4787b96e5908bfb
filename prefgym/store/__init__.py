"""The preference store: segments, queries and judgments of a run in one SQLite file.

``PreferenceStore`` is the one class; the file format and its transaction idiom
(``_file``), the query queue with its leases (``_queries``) and the records it
hands out (``_records``) are private modules behind it.
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
    from prefgym.store._records import (
        Judgeable,
        Query,
        StoredJudgment,
        TrainingData,
        training_data,
    )
    from prefgym.store._store import PreferenceStore

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
