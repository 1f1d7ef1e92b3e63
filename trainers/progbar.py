"""A Keras progress bar that ends at its total when steps_per_execution does not divide it.

Why Keras 3's bar overshoots: `keras.src.trainers.epoch_iterator.EpochIterator` hands the fit
loop one (begin_step, end_step) pair per execution, with end_step = begin_step +
steps_per_execution - 1 whatever the data holds. With 235 batches and steps_per_execution=10
the last execution begins at step 230 and stops after 5 steps, when the `tf.data` iterator runs
dry inside the compiled loop (`keras.src.backend.tensorflow.trainer`'s
`multi_step_on_iterator`), yet the loop calls `on_train_batch_end(239)`. `ProgbarLogger` shows
batch + 1, so the bar prints 240/235 (bar past its end, negative ETA) before `on_epoch_end`
redraws it at 235/235; a log file or notebook keeps both lines. Evaluation and prediction pass
their steps the same way.

`ExactProgbarLogger` clamps the reported step to the bar's total (the epoch's batch count that
Keras knows up front for arrays and for datasets of known cardinality, such as
`tfpriors.datasets.make_dataset`'s), which is the step the last execution really ended on. Only
the display changes: the other callbacks (TensorBoard, BackupAndRestore, TerminateOnNaN) keep
Keras' own arguments, and the number of steps trained is untouched. `trainers.VAE.fit` adds one
unless the caller passes a ProgbarLogger or a ready CallbackList.
"""

import keras

__all__ = ["ExactProgbarLogger", "with_exact_progbar"]


class ExactProgbarLogger(keras.callbacks.ProgbarLogger):
    """`keras.callbacks.ProgbarLogger` whose step never passes the known total.

    With an unknown total (a dataset of unknown cardinality, first epoch) the step is shown as
    Keras passes it.
    """

    def _true_batch(self, batch):
        if self.target is None:
            return batch
        return min(batch, self.target - 1)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._true_batch(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._true_batch(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._true_batch(batch), logs)


def with_exact_progbar(callbacks, verbose):
    """`callbacks` for `fit` with an `ExactProgbarLogger` added where Keras would add its own.

    Args:
      callbacks: None, a (nested) list of callbacks, or a `keras.callbacks.CallbackList`.
      verbose: fit's verbosity; 0 adds nothing, as Keras then shows no bar.

    Returns:
      `callbacks` unchanged if verbose is 0, if it is a CallbackList (Keras uses it as given) or
      if it already holds a ProgbarLogger; otherwise a new flat list ending with an
      ExactProgbarLogger.
    """
    if verbose == 0 or isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    callbacks = keras.tree.flatten(callbacks) if callbacks else []
    if not any(isinstance(cb, keras.callbacks.ProgbarLogger) for cb in callbacks):
        callbacks.append(ExactProgbarLogger())
    return callbacks
