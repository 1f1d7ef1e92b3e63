"""Distributed training: strategies, logical CPU devices, cross-replica helpers of the train_step.

Keras 3 on the TensorFlow backend supports `tf.distribute` directly: a model created (and
compiled) inside `strategy.scope()` remembers the strategy, `fit` distributes the tf.data
pipeline with `strategy.experimental_distribute_dataset` (each global batch is split into one
slice per replica) and runs `train_step` through `strategy.run` in every replica. The optimizer
all-reduces the gradients by SUM (`TFOptimizer._all_reduce_sum_gradients`), so a replica's loss
must be its share of the global-batch mean: sum over its examples / global batch size. That is
what `LatentModel.train_step` does with the numbers from `replica_batch_slice`.

Choosing a strategy (`get_strategy`):
  "default"       no distribution (the no-op default strategy); the single-device numbers.
  "mirrored"      `MirroredStrategy`: one replica per local GPU, else per logical CPU device
                  (see `configure_logical_cpus`), synchronous all-reduce in one process.
  "multi_worker"  `MultiWorkerMirroredStrategy`: one process per worker, the cluster read from
                  the TF_CONFIG environment variable, collective ops over gRPC (RING on CPU).

Both strategies must be created before TensorFlow initialises its devices (logical CPUs) or
runs any op (MultiWorkerMirroredStrategy configures collective ops at start-up), so a program
calls `configure_logical_cpus` and `get_strategy` first.

Multi-worker outputs: all workers run the same code (saving a model reads variables and may
run collective ops, so every worker must take part), but only the chief writes the run
directory; the others write to a temporary directory (`write_dir`), as the TensorFlow
multi-worker guide recommends. `DistributedBackupAndRestore` restores every worker from the
chief's backup (the run directory must then be on a shared file system) and lets only the chief
write it.
"""

import collections
import os
import shutil
import tempfile
import warnings

import keras
import tensorflow as tf

from tfpriors._validation import check_positive_int

__all__ = ["STRATEGIES", "configure_logical_cpus", "get_strategy", "is_distributed", "is_chief",
           "write_dir", "cleanup_write_dir", "shard_by_data", "num_replicas", "replica_batch_slice",
           "cross_replica_sum", "logs_for_keras", "BatchSlice", "DistributedBackupAndRestore"]

STRATEGIES = ("default", "mirrored", "multi_worker")

BatchSlice = collections.namedtuple("BatchSlice", ["offset", "global_size"])
BatchSlice.__doc__ = """Where a replica's examples sit in the global batch.

    offset: int32 scalar, the global row index of the replica's first example.
    global_size: int32 scalar, the number of examples in the global batch (all replicas).
"""


# ---------------------------------------------------------------------------- devices, strategies
def configure_logical_cpus(num_devices):
    """Splits the first physical CPU into `num_devices` logical devices /CPU:0 ... /CPU:{n-1}.

    MirroredStrategy then places one replica on each, which makes data-parallel training
    testable on a CPU-only machine. The logical devices share the same cores (no speed-up).
    Must run before TensorFlow initialises its devices (before the first op or device query
    that creates the eager context).

    Args:
      num_devices: int >= 1; 1 (or the current count) leaves the configuration alone.

    Returns:
      The list of logical CPU device names.

    Raises:
      ValueError: for a non-positive count.
      RuntimeError: if TensorFlow has already initialised its devices with another count.
    """
    num_devices = check_positive_int("logical_cpus", num_devices)
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if num_devices > 1 and (current is None or len(current) != num_devices):
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
        except RuntimeError as err:
            raise RuntimeError(
                f"Expected to configure {num_devices} logical CPU devices before TensorFlow "
                f"initialises its devices (call configure_logical_cpus / pass --logical-cpus at "
                f"program start). Received: devices already initialised ({err})") from err
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def get_strategy(name="default", devices=None, communication="ring", heartbeat_timeout=60.0):
    """Builds the tf.distribute strategy named `name`.

    Args:
      name: "default" (no distribution), "mirrored" or "multi_worker".
      devices: mirrored only, the device names of the replicas; None uses every local GPU, or
        every logical CPU device when there is no GPU.
      communication: multi_worker only, the collective implementation: "ring" (gRPC ring
        all-reduce, works on CPU), "nccl" (GPUs) or "auto".
      heartbeat_timeout: multi_worker only, seconds without a heartbeat after which the
        coordination service declares a worker dead (see `_configure_coordination_service`).

    Returns:
      A `tf.distribute.Strategy`. Call it before any other TensorFlow op for multi_worker.

    Raises:
      ValueError: for an unknown name or communication.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Expected `strategy` to be one of {list(STRATEGIES)}. Received: {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None and not tf.config.list_physical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    implementations = {"ring": tf.distribute.experimental.CommunicationImplementation.RING,
                       "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
                       "auto": tf.distribute.experimental.CommunicationImplementation.AUTO}
    if communication not in implementations:
        raise ValueError(f"Expected `communication` to be one of {sorted(implementations)}. "
                         f"Received: {communication!r}")
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementations[communication])
    _configure_coordination_service(heartbeat_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _configure_coordination_service(heartbeat_timeout):
    """Configures the coordination service MultiWorkerMirroredStrategy would, with a longer
    heartbeat timeout.

    TensorFlow's default is 10 s. On a CPU host shared with other jobs, two workers on loopback
    ports were declared dead ("The following tasks are unhealthy (stopped sending heartbeats)")
    while tracing the first train step, and the surviving worker then hung on exit. The strategy
    only configures the service when none is configured (`context.coordination_service is
    None`), so this sets the same configuration (standalone service, leader and coordinated
    jobs as `MultiWorkerMirroredStrategy._initialize_multi_worker`) with `heartbeat_timeout`.
    A crashed worker is detected after `heartbeat_timeout` seconds instead of 10. Uses
    TensorFlow's internal context API (no public one exists); a no-op without a cluster.
    """
    try:        # internal modules; their layout moves between TensorFlow versions
        from tensorflow.python.distribute import multi_worker_util
        from tensorflow.python.eager import context
        coordinated_job = context.coordination_config_pb2.CoordinatedJob
    except (ImportError, AttributeError) as err:
        warnings.warn(f"Cannot set the coordination service's heartbeat timeout ({err}); "
                      f"TensorFlow's default (10 s) applies", stacklevel=3)
        return
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    if (not spec.as_dict() or resolver.task_type not in ("chief", "worker")
            or context.context().coordination_service is not None):
        return
    jobs = [coordinated_job(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs, heartbeat_timeout_in_ms=int(heartbeat_timeout * 1000))


def is_distributed(strategy):
    """True for any strategy but TensorFlow's default (no-op) one, even with a single replica.

    Keras runs the train step through `strategy.run` then, and two Keras 3 limitations apply
    (`LatentModel.fit` checks them): steps_per_execution must be 1 (the multi-step loop wraps the step
    in tf.cond inside tf.while_loop, and the strategies' merge_call fails there, "You must feed
    a value for placeholder tensor 'while/cond/Placeholder'", keras-team/keras#19246), and
    jit_compile must be off (XLA compiles one device's program; the mirrored step reads
    variables on every replica's device).
    """
    with strategy.scope():
        return tf.distribute.has_strategy()


def _task(strategy):
    """(task_type, task_id, cluster dict) of a multi-worker strategy, else (None, None, {})."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, None, {}
    spec = resolver.cluster_spec()
    return resolver.task_type, resolver.task_id, spec.as_dict() if spec else {}


def is_chief(strategy=None):
    """True for the process that writes outputs: always without a cluster; in a cluster the
    'chief' task, or worker 0 when the cluster has no chief (TF's multi-worker convention)."""
    task_type, task_id, cluster = _task(tf.distribute.get_strategy() if strategy is None else strategy)
    if task_type is None:
        return True
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in cluster)


def write_dir(run_dir, strategy=None):
    """The directory this process writes to: `run_dir` on the chief, else a fresh temp dir.

    Non-chief workers still run every save (variables are read collectively) but their files
    go to a private directory that `cleanup_write_dir` removes afterwards.
    """
    if is_chief(strategy):
        return str(run_dir)
    task_type, task_id, _ = _task(tf.distribute.get_strategy() if strategy is None else strategy)
    return tempfile.mkdtemp(prefix=f"tfpriors_{task_type}{task_id}_")


def cleanup_write_dir(path, run_dir):
    """Removes a non-chief worker's temporary write directory (never the chief's run_dir)."""
    if os.path.abspath(str(path)) != os.path.abspath(str(run_dir)):
        shutil.rmtree(path, ignore_errors=True)


def shard_by_data(dataset):
    """Sets tf.data auto-sharding to DATA: every worker reads the same in-memory pipeline and
    keeps its own slice of every global batch (FILE sharding does not apply to in-memory data)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# ---------------------------------------------------------------------------- replica-context helpers
def num_replicas():
    """Replicas in sync in the current replica context (1 outside strategy.run or without one).

    A Python int, known when the train step is traced, so the single-device path can keep its
    own (unchanged) arithmetic.
    """
    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def replica_batch_slice(local_size):
    """Offset of this replica's examples in the global batch and the global batch size.

    One all-gather of the per-replica batch sizes: offset = sum of the sizes of the replicas
    with a smaller id (the distributed dataset hands out consecutive slices of each global batch
    in replica order), global size = sum of all. Exact also for a last, uneven batch.

    Args:
      local_size: int scalar, this replica's batch size.

    Returns:
      A `BatchSlice`, or None with a single replica (the local batch is the global one).
    """
    if num_replicas() == 1:
        return None
    context = tf.distribute.get_replica_context()
    sizes = context.all_gather(tf.reshape(tf.cast(local_size, tf.int32), [1]), axis=0)   # [R]
    replica_id = tf.cast(context.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(tf.where(tf.range(tf.size(sizes)) < replica_id, sizes, 0))
    return BatchSlice(offset=offset, global_size=tf.reduce_sum(sizes))


def cross_replica_sum(value):
    """all_reduce(SUM) over the replicas in sync; the value itself with a single replica."""
    if num_replicas() == 1:
        return value
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def _keras_reduces_logs_along_axis_0(strategy):
    """Keras' own test (`_collective_all_reduce_multi_worker` in keras.src.backend.tensorflow.
    trainer) for reducing the step outputs with `strategy.reduce("MEAN", v, axis=0)`."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    if in_multi_worker_mode is not None:
        return bool(in_multi_worker_mode())
    _, _, cluster = _task(strategy)
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) > 1


def logs_for_keras(logs):
    """Shapes a train/test step's scalar logs for Keras' cross-replica reduction.

    Keras 3 reduces the per-replica step outputs of a multi-worker MultiWorkerMirroredStrategy
    with `strategy.reduce("MEAN", value, axis=0)`, which fails for scalars ("Invalid reduction
    dimension 0 for input with 0 dimensions"; tensorflow/tensorflow#72388). Giving every log
    the shape [1] there turns that reduction into the mean over replicas, a scalar again (the
    values are equal in all replicas anyway). Elsewhere (no strategy, MirroredStrategy, one
    worker) the logs are returned unchanged.
    """
    if not _keras_reduces_logs_along_axis_0(tf.distribute.get_strategy()):
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}


# ---------------------------------------------------------------------------- fault tolerance
class DistributedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that every worker restores from the chief's backup and
    only the chief writes.

    Keras 3's callback reads and writes one directory. In a cluster every worker must restore
    the same state (the weights are mirrored) while concurrent writes to one file would race,
    so: read from `backup_dir` (shared by all workers), write to `write_dir` (the chief's
    `backup_dir`, a private temporary directory on the other workers; saving still runs on all
    of them). Without a cluster this is the plain callback. On train end each process deletes
    its own write directory (`delete_checkpoint`), the chief's being the shared backup.
    The paths are switched by resetting the parent's path attributes (as named in Keras 3.15).

    Args:
      backup_dir: the chief's backup directory, read on start by every worker.
      write_dir: where this process writes its backups (default `backup_dir`).
      **kwargs: as `keras.callbacks.BackupAndRestore`.
    """

    def __init__(self, backup_dir, write_dir=None, **kwargs):
        super().__init__(str(backup_dir), **kwargs)
        self.read_dir = str(backup_dir)
        self.write_dir = str(write_dir) if write_dir is not None else self.read_dir

    def _paths_in(self, directory):
        self.backup_dir = directory
        self._weights_path = os.path.join(directory, "latest.weights.h5")
        self._training_metadata_path = os.path.join(directory, "training_metadata.json")
        self._prev_weights_path = f"{self._weights_path}.bkp"
        self._prev_training_metadata_path = f"{self._training_metadata_path}.bkp"

    def on_train_begin(self, logs=None):
        self._paths_in(self.read_dir)
        resuming = os.path.exists(self._weights_path)
        super().on_train_begin(logs)
        self._paths_in(self.write_dir)
        if resuming and self.write_dir == self.read_dir:      # the chief (or the only process)
            # Keras sets _initial_epoch to the number of finished epochs; its progress lines
            # count from 1 ("Epoch N/M"), so training goes on at epoch _initial_epoch + 1.
            print(f"resuming from backup at epoch {self.model._initial_epoch + 1}", flush=True)
