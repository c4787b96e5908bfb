"""prefgym: a Gymnasium suite for reinforcement learning from preferences.

Importing the package registers every environment under the ``prefgym/``
namespace; it does not import torch, transformers or pygame.
"""

from __future__ import annotations

from prefgym.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
