"""The Ray Tune backend of sweeps: each run one Tune trial, on one machine or a cluster.

A trial starts the run's `launch.train` process on the node Tune placed it on
and reports every evaluation in metrics.jsonl to Tune as it is written, so a
scheduler (ASHA) can stop a trial whose eval return trails the others; a
stopped run gets SIGTERM, checkpoints and is marked 'stopped'. A run that fails
raises in its trial, so Tune retries it (`max_failures`), and the retry resumes
from the run directory. Failed runs are never rerun outside Ray. A configuration
error (the launcher's exit status 2) fails the same way every time, so it is
reported without retrying.

Ray is an optional extra (`pip install -e '.[ray]'`); only this module imports it.
"""

import dataclasses
import datetime
import os

from agents_gin import sweep

USER_ERROR = 2  # launch.train's exit status for a bad config or flag.


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how trials run.

    Attributes:
      address: an existing cluster ('auto' or host:port); None starts Ray in this
        process (and stops it after the sweep). On a cluster, every node needs the
        repository and the sweep root at the same paths (docs/sweeps.md).
      cpus_per_trial: CPUs Tune reserves for a run: 1 plus its environment workers.
      max_failures: Tune retries a failed run this often; each retry resumes it.
      scheduler: None (every trial runs to the end) or 'asha' (asynchronous
        successive halving on eval return: at each rung, a trial below the top
        1/reduction_factor of those that reached it is stopped).
      grace_period: evaluations a trial always gets before ASHA may stop it.
      reduction_factor: ASHA's rungs lie at grace_period * reduction_factor**k evaluations.
      max_concurrent: trials at once (None: as many as the cluster's CPUs allow).
    """

    address: str = None
    cpus_per_trial: float = 1
    max_failures: int = 2
    scheduler: str = None
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int = None

    def check(self):
        """Raises ValueError naming the first bad option."""
        if self.scheduler not in (None, 'asha'):
            raise ValueError(f"scheduler must be None or 'asha', got {self.scheduler!r}")
        for name in ('grace_period', 'max_failures'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == 'grace_period' else 0):
                raise ValueError(f'{name} must be an integer >= '
                                 f'{1 if name == "grace_period" else 0}, got {value!r}')
        if not isinstance(self.reduction_factor, int) or self.reduction_factor < 2:
            raise ValueError(f'reduction_factor must be an integer >= 2, got '
                             f'{self.reduction_factor!r}')
        if not self.cpus_per_trial > 0:
            raise ValueError(f'cpus_per_trial must be > 0, got {self.cpus_per_trial!r}')


class RunFailed(RuntimeError):
    """A run's training process failed; Tune retries the trial."""


def run_trials(runs, root, options):
    """Runs every run as a Tune trial and returns when all have ended."""
    options.check()
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise ImportError("The Ray backend needs Ray: pip install -e '.[ray]'") from error
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trial_function(runs), {'cpu': options.cpus_per_trial}),
            param_space={'run': tune.grid_search(list(range(len(runs))))},
            tune_config=tune.TuneConfig(scheduler=_scheduler(options),
                                        max_concurrent_trials=options.max_concurrent),
            run_config=tune.RunConfig(
                name=f'tune-{datetime.datetime.now():%Y%m%dT%H%M%S}',
                storage_path=os.path.join(root, '_ray'),
                failure_config=tune.FailureConfig(max_failures=options.max_failures),
                verbose=0))
        results = tuner.fit()  # Failed trials do not raise here; their logs say so.
        for result in results:
            # Ended by Tune without an error: finished, or stopped by the scheduler, whose
            # stop may have ended the trial before it could say so in the log.
            run = runs[result.config['run']]
            if result.error is None and not os.path.exists(
                    os.path.join(run.run_dir, 'finished.json')):
                sweep.mark_stopped(run, "Ray Tune's scheduler")
    finally:
        if started:
            ray.shutdown()


def _trial_function(runs):
    """The Tune function trainable that runs runs[config['run']] on its node."""

    def trial(config):
        import ray
        from ray import tune

        run = runs[config['run']]
        node = f'{ray.util.get_node_ip_address()} {ray.get_runtime_context().get_node_id()}'

        def report(record):
            tune.report({'eval_return': record['eval_return'], 'env_steps': record['env_steps']})

        code = sweep.launch_run(run, report, node)
        if code not in (0, USER_ERROR):
            raise RunFailed(f'{run.name} seed {run.seed} exited with status {code} on {node}; '
                            f'log {run.log}')

    return trial


def _scheduler(options):
    """Tune's ASHA scheduler on eval return per evaluation, or None."""
    if options.scheduler != 'asha':
        return None
    from ray.tune.schedulers import ASHAScheduler

    # max_t only bounds the rungs; runs end when their Loop.total_steps is reached.
    return ASHAScheduler(metric='eval_return', mode='max', time_attr='training_iteration',
                         max_t=10_000, grace_period=options.grace_period,
                         reduction_factor=options.reduction_factor)
