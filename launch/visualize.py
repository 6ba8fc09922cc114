r"""Renders episodes of a trained run to MP4 with their statistics as JSON.

python -m launch.visualize --logdir=runs/20261122T010334-ppo_pendulum --outdir=videos
"""

import json
import os

from absl import app, flags

flags.DEFINE_string('logdir', None, 'The run directory (holds config.gin, checkpoints/).')
flags.DEFINE_string('outdir', None, 'Where videos and stats.json go.')
flags.DEFINE_string('checkpoint', None, 'A checkpoint path; default: the latest.')
flags.DEFINE_integer('num_episodes', 3, 'Episodes to render.')
flags.DEFINE_integer('seed', 0, 'Seed of the first episode (one more per episode).')
FLAGS = flags.FLAGS

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')


def main(argv):
    """Renders and prints the statistics."""
    del argv
    from agents_gin import visualize

    stats = visualize.visualize(FLAGS.logdir, FLAGS.outdir, FLAGS.checkpoint,
                                FLAGS.num_episodes, seed=FLAGS.seed, search_paths=[CONFIGS])
    print(json.dumps(stats, indent=2))


if __name__ == '__main__':
    flags.mark_flags_as_required(['logdir', 'outdir'])
    app.run(main)
