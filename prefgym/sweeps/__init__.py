"""Sweeps: many runs as trials on Ray Tune, and statistics over their seeds with rliable.

``run_sweep``/``resume_sweep`` run a grid of settings times seeds (``SweepSpec``)
on a local Ray or a cluster, each trial an ordinary run directory under
``SWEEP/trials/``; ``sweep_report`` prints the IQM, mean and median of the
normalised return with bootstrap confidence intervals and draws the plots;
``compare`` gives the probability of improvement of one configuration over
another. The spec and the grid file reader are in the cheap ``prefgym.sweeps.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.sweeps._report import (
        Scored,
        compare,
        random_returns,
        scored_trials,
        sweep_report,
    )
    from prefgym.sweeps._stats import Estimate, aggregates, probability_of_improvement
    from prefgym.sweeps._sweep_dir import SweepDir, TrialResult, is_sweep
    from prefgym.sweeps._tune import pending_trials, ray_session, resume_sweep, run_sweep
    from prefgym.sweeps.config import SweepSpec, Trial, expand, read_grid_file, seed_list

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
