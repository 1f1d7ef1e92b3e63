"""trainers.progbar: the progress bar ends at its total when steps_per_execution does not
divide it."""

import keras
import pytest
from keras.src.utils.progbar import Progbar

from tests.helpers import binary_images, make_vae
from tfpriors.datasets import make_dataset
from trainers.progbar import ExactProgbarLogger, with_exact_progbar

BATCHES = 23          # 23 batches with 10 steps per execution: the last execution runs 3 steps


@pytest.fixture
def shown(monkeypatch):
    """Every (step, total) a Progbar is asked to draw, whether or not its interval prints it."""
    calls = []
    update = Progbar.update

    def recording_update(self, current, values=None, finalize=None):
        calls.append((current, self.target))
        return update(self, current, values, finalize)

    monkeypatch.setattr(Progbar, "update", recording_update)
    return calls


class _EndSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(batch)


def _model_and_data():
    model = make_vae("standard_normal")
    model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=10)
    return model, make_dataset(binary_images(4 * BATCHES), 4, shuffle=False)


def test_vae_fit_bar_ends_at_its_total_and_training_is_unchanged(shown):
    model, data = _model_and_data()
    end_steps = _EndSteps()
    model.fit(data, epochs=1, verbose=1, callbacks=[end_steps])
    assert shown[-1] == (BATCHES, BATCHES)
    assert max(current for current, _ in shown) == BATCHES       # Keras' own bar draws 30/23
    assert int(model.optimizer.iterations) == BATCHES
    assert end_steps.steps == [9, 19, 29]                       # other callbacks: Keras' steps


def test_evaluate_with_the_logger_ends_at_its_total(shown):
    model, data = _model_and_data()
    model.evaluate(data, verbose=1, callbacks=[ExactProgbarLogger()])
    assert shown[-1] == (BATCHES, BATCHES)
    assert max(current for current, _ in shown) == BATCHES


def test_with_exact_progbar_adds_one_only_where_keras_would_add_its_own():
    added = with_exact_progbar(None, "auto")
    assert [type(cb) for cb in added] == [ExactProgbarLogger]
    stop = keras.callbacks.TerminateOnNaN()
    added = with_exact_progbar([[stop]], 1)
    assert added[0] is stop and isinstance(added[1], ExactProgbarLogger)
    own = [keras.callbacks.ProgbarLogger()]
    assert with_exact_progbar(own, 1) == own
    assert with_exact_progbar([stop], 0) == [stop]
    ready = keras.callbacks.CallbackList([stop])
    assert with_exact_progbar(ready, 1) is ready
