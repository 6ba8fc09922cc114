"""agents_gin: gin-configured batched reinforcement learning on TensorFlow 2.

This package's `__init__` stays free of TensorFlow imports so that environment
worker processes, which import `agents_gin.envs`, start in about a second.
"""

__version__ = '0.1.0'
