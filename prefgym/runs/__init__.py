"""What a run is: control and text runs in run directories, their configs, metrics and reports.

``train``/``resume``/``evaluate``/``report``/``label`` carry out a control run
(``TrainConfig``); ``train_text``/``resume_text`` a text run (``TextTrainConfig``);
``convert_run`` moves an earlier release's control run off pickles.
A run directory (``RunDir``) holds the resolved config, the store, checkpoints,
``metrics.csv`` and plots. The configs are in the cheap ``prefgym.runs.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.runs._control import (
        convert_run,
        evaluate,
        label,
        resume,
        set_threads,
        train,
    )
    from prefgym.runs._metrics import MetricsLog, read_metrics, truncate_metrics
    from prefgym.runs._plots import plot_metrics, plot_text_metrics, pyplot, save_png
    from prefgym.runs._presets import agent_preset, learner_preset, reward_model_preset
    from prefgym.runs._report import (
        format_table,
        is_text_run,
        labeler_table,
        report,
        text_report,
    )
    from prefgym.runs._run_dir import RunDir
    from prefgym.runs._text import TextRun, resume_text, train_text
    from prefgym.runs.config import (
        HUMAN,
        RLAIF,
        THREADS_VARIABLE,
        TextTrainConfig,
        TrainConfig,
        check_env_id,
        default_label_t0,
        queries_per_round,
        round_starts,
        text_task_name,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
