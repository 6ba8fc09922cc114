"""Imports every module that registers gin configurables, so any config parses.

The launcher imports this before parsing; a .gin file's own `import` lines
name the same modules, so a saved config also parses in a fresh process.
"""

# pylint: disable=unused-import
import agents_gin.algorithms.optimizers  # noqa: F401
import agents_gin.algorithms.paac  # noqa: F401
import agents_gin.algorithms.ppo  # noqa: F401
import agents_gin.algorithms.simple_agents  # noqa: F401
import agents_gin.envs  # noqa: F401
import agents_gin.envs.envpool_env  # noqa: F401 -- imports envpool only when built.
import agents_gin.envs.in_graph  # noqa: F401
import agents_gin.experiment  # noqa: F401
import agents_gin.loop  # noqa: F401
import agents_gin.networks.conv  # noqa: F401
import agents_gin.networks.feed_forward  # noqa: F401
import agents_gin.networks.recurrent  # noqa: F401
import agents_gin.simulate  # noqa: F401
import agents_gin.threads  # noqa: F401
