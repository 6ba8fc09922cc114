"""The environment side: workers, batch env, wrappers, factory, test envs.

Importing this package never imports TensorFlow, so that worker processes start
fast; `agents_gin.envs.in_graph` is the one module here that needs it.
"""

from agents_gin.envs.batch_env import BatchEnv, make_batch_env
from agents_gin.envs.errors import (
    EnvWorkerCrashed,
    EnvWorkerError,
    EnvWorkerTimeout,
    RestartLimitExceeded,
)
from agents_gin.envs.factory import log_mujoco_warnings, make_env
from agents_gin.envs.testing import FaultyEnv, GinTaggedEnv, MockEnv
from agents_gin.envs.worker import EnvWorker
from agents_gin.envs.wrappers import (
    ActionRepeat,
    CheckFinite,
    ConvertTo32Bit,
    FrameDelta,
    FrameHistory,
    RandomStart,
    RangeNormalize,
)

__all__ = [
    'ActionRepeat', 'BatchEnv', 'CheckFinite', 'ConvertTo32Bit', 'EnvWorker', 'EnvWorkerCrashed',
    'EnvWorkerError', 'EnvWorkerTimeout', 'FaultyEnv', 'FrameDelta', 'FrameHistory',
    'GinTaggedEnv', 'MockEnv', 'RandomStart', 'RangeNormalize', 'log_mujoco_warnings',
    'RestartLimitExceeded', 'make_batch_env', 'make_env',
]
