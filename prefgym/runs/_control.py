"""A control run: an SB3 agent trained from judgments in a run directory, evaluated, labelled.

Wires the parts together: environments, the preference store, an oracle (or a
person), the reward model and its learner, the preference loop and an SB3 agent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefgym.files import fsync_directory, readable_directory
from prefgym.runs._metrics import MetricsLog, read_metrics, truncate_metrics
from prefgym.runs._presets import agent_preset, learner_preset, reward_model_preset
from prefgym.runs._run_dir import RunDir
from prefgym.runs._waiting import check_max_wait, wait_reporter
from prefgym.runs.config import HUMAN, THREADS_VARIABLE, TrainConfig

if TYPE_CHECKING:
    from prefgym.agents.sb3 import AgentConfig, SB3Agent
    from prefgym.reward import RewardEnsemble


def set_threads(threads: int | None = None) -> int:
    """Set torch's thread count: ``threads``, else ``$PREFGYM_THREADS``, else 1."""
    if threads is None:
        text = os.environ.get(THREADS_VARIABLE, "1")
        try:
            threads = int(text)
        except ValueError:
            raise ValueError(
                f"{THREADS_VARIABLE}={text!r} is not a number of threads; "
                f"set it to an integer >= 1 (e.g. {THREADS_VARIABLE}=1) or unset it"
            ) from None
        if threads < 1:
            raise ValueError(f"{THREADS_VARIABLE} must be >= 1, got {text!r}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
    return threads


RoundHook = Callable[[dict[str, float]], None]
"""Called with each round's metrics row, after the row is written (a sweep reports it)."""


def train(
    config: TrainConfig,
    out: str | os.PathLike[str] | None = None,
    *,
    show_progress: bool = True,
    on_round: RoundHook | None = None,
    max_wait: float | None = None,
) -> RunDir:
    """Start a training run in ``out`` (default ``runs/<env>-<time>``) and run it to the end.

    With ``oracle="human"`` each refit waits until people have answered every
    query asked, for ``max_wait`` seconds at most (None: as long as they take).
    """
    max_wait = check_max_wait(max_wait)
    if out is None:
        name = config.env_id.split("/")[-1]
        out = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = RunDir.create(out, {"train": asdict(config)})
    with run.trainer_lock():
        _run(run, config, show_progress, on_round, max_wait)
    return run


def resume(
    run_path: str | os.PathLike[str],
    *,
    show_progress: bool = True,
    on_round: RoundHook | None = None,
    max_wait: float | None = None,
) -> RunDir:
    """Carry on a run from its store and checkpoints, after Ctrl-C or a crash.

    A finished run is left as it is (see :meth:`RunDir.finished`); ``max_wait`` as
    for :func:`train`.

    Raises:
        ValueError: The config is damaged, or another process trains the run.
    """
    max_wait = check_max_wait(max_wait)
    run = RunDir.open(run_path)
    config = run.train_config()
    with run.trainer_lock():
        if run.finished() is None:
            _run(run, config, show_progress, on_round, max_wait)
    return run


def _agent(run: RunDir, config: TrainConfig, *, seed: int) -> SB3Agent:
    """The run's agent: restored from its checkpoint, else a fresh one of the task's preset."""
    from prefgym.agents.sb3 import SB3Agent

    kwargs: dict[str, Any] = {
        "seed": seed,
        "segment_length": config.segment_length,
        "pay_true": config.true_reward,
    }
    saved = run.saved_agent()
    if saved is not None:
        return SB3Agent.load(saved, config.env_id, _agent_config(config), **kwargs)
    return SB3Agent.create(config.env_id, _agent_config(config), **kwargs)


def _agent_config(config: TrainConfig) -> AgentConfig:
    """The agent settings of a run: the task's preset for the run's algorithm."""
    return replace(agent_preset(config.env_id, config.algo), algo=config.algo)


def _reward_model(run: RunDir, config: TrainConfig, agent: SB3Agent) -> RewardEnsemble:
    """The run's reward model: restored from its checkpoint, else a fresh one of the preset."""
    import torch

    from prefgym.reward import RewardEnsemble

    if (readable_directory(run.reward_model) / "reward_model.json").exists():
        return RewardEnsemble.load(run.reward_model)
    return RewardEnsemble(
        agent.envs.observation_space,
        agent.envs.action_space,
        reward_model_preset(config.env_id, config.members),
        generator=torch.Generator().manual_seed(config.seed),
    )


def _progress_bar(config: TrainConfig, agent: SB3Agent, show_progress: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=config.steps,
        initial=min(agent.steps, config.steps),
        unit="step",
        desc=config.env_id,
        disable=not show_progress,
        dynamic_ncols=True,
    )


def _run(
    run: RunDir,
    config: TrainConfig,
    show_progress: bool,
    report: RoundHook | None = None,
    max_wait: float | None = None,
) -> None:
    from prefgym.judges import SyntheticOracle, parse_oracle
    from prefgym.loop import RoundResult, control_loop, describe
    from prefgym.reward import Learner
    from prefgym.store import Heartbeat, PreferenceStore

    run.check_store()
    read_metrics(run.metrics)  # a damaged log is named before any work
    if config.true_reward:
        _run_true_reward(run, config, show_progress, report)
        return
    store = PreferenceStore(run.store)
    round_index = int(store.get_meta("round", 0))
    rng = np.random.default_rng([config.seed, round_index])  # a resumed run draws afresh
    oracle = None
    if config.oracle != HUMAN:
        oracle = SyntheticOracle(parse_oracle(config.oracle), config.oracle, rng.spawn(1)[0])
    agent = _agent(run, config, seed=config.seed + round_index)
    truncate_metrics(run.metrics, "step", agent.steps)  # rounds after the checkpoint are redone
    ensemble = _reward_model(run, config, agent)
    learner = Learner(learner_preset(config.env_id))
    metrics = MetricsLog(run.metrics, run.tensorboard)
    bar = _progress_bar(config, agent, show_progress)

    def on_round(result: RoundResult) -> None:
        row = result.row()
        metrics.write(row, result.step)
        agent.save(run.agent)
        bar.set_postfix(describe(result), refresh=False)
        if report is not None:
            report(row)

    def progress(steps: int) -> None:
        bar.update(min(steps, config.steps - bar.n))

    loop = control_loop(
        env_id=config.env_id,
        agent=agent,
        ensemble=ensemble,
        learner=learner,
        store=store,
        oracle=oracle,
        config=config.loop_config(),
        rng=rng,
        on_refit=lambda _: ensemble.save(run.reward_model),  # beside the learner's state
        on_round=on_round,
        on_wait=wait_reporter(bar, config.env_id),
        max_wait=max_wait,
        progress=progress,
    )
    try:
        with Heartbeat(run.store, store.clock) as heartbeat:  # tells a labeling window
            loop.heartbeat = heartbeat.set
            loop.run()
            agent.save(run.agent)
            ensemble.save(run.reward_model)
            run.mark_finished(store, steps=agent.steps, judgments=store.n_judgments())
    finally:
        bar.close()
        metrics.close()
        store.close()


def _run_true_reward(
    run: RunDir, config: TrainConfig, show_progress: bool, report: RoundHook | None
) -> None:
    """The plain-RL baseline: the same agent on the hidden reward, checkpointed each round.

    Rounds of ``round_steps`` as in a preference run, so the two agents learn in the
    same chunks; the store holds only the round counter and the finished mark.
    """
    from prefgym.store import PreferenceStore

    store = PreferenceStore(run.store)
    round_index = int(store.get_meta("round", 0))
    agent = _agent(run, config, seed=config.seed + round_index)
    truncate_metrics(run.metrics, "step", agent.steps)
    metrics = MetricsLog(run.metrics, run.tensorboard)
    bar = _progress_bar(config, agent, show_progress)
    try:
        while agent.steps < config.steps:
            before, started = agent.steps, time.perf_counter()
            agent.learn(
                min(config.round_steps, config.steps - agent.steps),
                lambda steps: bar.update(min(steps, config.steps - bar.n)),
            )
            agent.save(run.agent)
            round_index += 1
            store.set_meta("round", round_index)
            episodes = agent.recent_metrics()
            row = {"step": float(agent.steps), "round": float(round_index)}
            row["true_return"] = episodes["true_return"]
            row["seconds"] = time.perf_counter() - started
            metrics.write(row, agent.steps)
            bar.set_postfix({"true return": f"{row['true_return']:.1f}"}, refresh=False)
            if report is not None:
                report(row)
            if agent.steps == before:  # cannot happen with SB3; never loop forever
                raise RuntimeError(f"the agent took no step in round {round_index}")
        run.mark_finished(store, steps=agent.steps, judgments=0)
    finally:
        bar.close()
        metrics.close()
        store.close()


def evaluate(
    run_path: str | os.PathLike[str] | RunDir, *, episodes: int = 20, seed: int = 10_000
) -> dict[str, float]:
    """True return of the run's trained (deterministic) policy over fresh episodes."""
    from prefgym.agents.sb3 import SB3Agent, evaluate_true_return

    run = run_path if isinstance(run_path, RunDir) else RunDir.open(run_path)
    config = run.train_config()
    saved = run.saved_agent()
    if saved is None:
        raise FileNotFoundError(f"{run.agent} does not exist: the run has not finished a round yet")
    agent = SB3Agent.load(
        saved,
        config.env_id,
        _agent_config(config),
        seed=seed,
        segment_length=config.segment_length,
        pay_true=config.true_reward,
    )
    mean, std, _ = evaluate_true_return(agent.model, config.env_id, episodes, seed)
    return {"episodes": episodes, "true_return_mean": mean, "true_return_std": std}


def convert_run(run_path: str | os.PathLike[str]) -> RunDir:
    """Convert a run's ``agent.zip`` (Stable-Baselines3's format) to prefgym's checkpoint.

    Loading the zip UNPICKLES it, which runs whatever code its maker put in: call
    this only on a run from someone you trust. The agent is saved as ``RUN/agent/``,
    read back through the safe loader, and the zip renamed to ``agent.zip.converted``.

    Raises:
        FileNotFoundError: The run has no ``agent.zip``.
        ValueError: The run already has an ``agent/`` checkpoint.
    """
    from prefgym.agents.sb3 import SB3Agent

    run = RunDir.open(run_path)
    config = run.train_config()
    legacy = run.legacy_agent
    if readable_directory(run.agent).exists():
        raise ValueError(
            f"{run.path} has its agent in {run.agent} already; nothing to convert"
            + (
                f" ({legacy} is not read: delete it if you do not need it)"
                if legacy.exists()
                else ""
            )
        )
    if not legacy.is_file():
        raise FileNotFoundError(f"{legacy} does not exist: {run.path} has no agent to convert")
    kwargs: dict[str, Any] = {"seed": config.seed, "segment_length": config.segment_length}
    with run.trainer_lock():  # no trainer may write the agent meanwhile
        agent = SB3Agent.load_sb3_zip(legacy, config.env_id, _agent_config(config), **kwargs)
        agent.save(run.agent)
        SB3Agent.load(run.agent, config.env_id, _agent_config(config), **kwargs)  # it opens
        os.replace(legacy, legacy.with_name(legacy.name + ".converted"))
        fsync_directory(run.path)
    return run


def label(
    run_path: str | os.PathLike[str],
    *,
    labeler: str | None = None,
    lease: float = 300.0,
    fps: float | None = None,
    speed: float = 1.0,
    rejudge: bool = False,
    size: tuple[int, int] | None = None,
    instructions: str | None = None,
) -> Any:
    """Open the labeling window on a run's store (``RUN/store.sqlite``) until the person quits.

    A text run (``prefgym text train``) works too: with ``--oracle human`` as a
    control run does; with a simulated oracle, which judges every query as it is
    asked, the window shows the pairs it judged (``rejudge``) and no budget.

    Args:
        run_path: A run directory, or a store file.
        labeler: The person's id (default: the run's ``labeler`` setting, else ``person``).
        lease: Seconds a pair on screen stays reserved for this window.
        fps: Playback rate at speed 1 (default: the environment's ``render_fps``).
        speed: Initial playback speed.
        rejudge: Also show pairs that others judged (for agreement); always on for a text
            run that an oracle judges.
        size: The window's width and height in pixels, at least ``prefgym.label.MIN_SIZE``
            (default: ``prefgym.label.DEFAULT_SIZE``).
        instructions: What "better" means, shown above the clips (default: the task's own
            criterion, and for a text task its rubric).

    Returns:
        The window's ``prefgym.label.WindowSummary``.
    """
    from prefgym.label import DEFAULT_SIZE, check_size, run_window
    from prefgym.store import PreferenceStore

    size = check_size(size or DEFAULT_SIZE)
    path = Path(run_path)
    budget = None
    env_id = None
    if path.is_dir():
        run = RunDir.open(path)
        text = oracle_judged = run.is_text()
        if text:
            text_settings = run.text_config()  # a damaged config is named before the window
            env_id = text_settings.env_id
            if text_settings.oracle == HUMAN:  # people judge it, as a control run
                budget, oracle_judged = text_settings.labels, False
        else:
            settings = run.train_config()
            budget, labeler = settings.labels, labeler or settings.labeler
            env_id = settings.env_id
        rejudge = rejudge or oracle_judged
        run.check_store()
        path = run.store
        if not path.exists():
            start = "text train" if text else f"train --oracle {HUMAN}"
            raise FileNotFoundError(
                f"{path} does not exist yet: the run has asked nothing; start it with "
                f"`prefgym {start} --out {run.path}`"
            )
    elif not path.is_file():
        raise FileNotFoundError(
            f"{path} is neither a run directory nor a store file; give the --out of "
            f"`prefgym train --oracle {HUMAN}`"
        )
    with PreferenceStore(path) as store:
        if instructions is None:
            instructions = task_instructions(env_id or _first_env_id(store))
        return run_window(
            store,
            labeler or TrainConfig.labeler,
            budget=budget,
            lease_seconds=lease,
            fps=fps,
            speed=speed,
            rejudge=rejudge,
            size=size,
            instructions=instructions,
        )


def task_instructions(env_id: str) -> str:
    """What a person judging ``env_id`` looks for: its criterion, then a text task's rubric."""
    from prefgym.envs.registration import TEXT_ENVS, instructions_for
    from prefgym.text import TASKS

    criterion = instructions_for(env_id)
    task = next((e.kwargs["task"] for e in TEXT_ENVS if e.id == env_id), None)
    if task is None:
        return criterion
    return f"{criterion}\n{TASKS[task].rubric()}"


def _first_env_id(store: Any) -> str:
    """The environment of a store's first segment ("" if it holds none)."""
    ids = store.segment_ids()[:1]
    return store.get_segments(ids, frames=False)[0].env_id if ids else ""
