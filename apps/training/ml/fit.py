"""Training with callbacks: a report at each epoch's end, progress within an epoch, cancellation
checked between batches, early stopping, class weights, mixed precision when asked."""

import contextlib
import time

import keras


class PortalCallback(keras.callbacks.Callback):
    """Reports epochs and batches to plain functions and stops when ``should_stop()`` says so.

    ``should_stop`` is called at most every ``check_every`` seconds (it may query a database),
    so a cancelled run stops within one batch of the next check.
    """

    def __init__(self, *, on_epoch=None, on_batch=None, should_stop=None, check_every=1.0):
        super().__init__()
        self.on_epoch, self.on_batch, self.should_stop = on_epoch, on_batch, should_stop
        self.check_every = check_every
        self.cancelled = False
        self._last_check = 0.0
        self._epoch = 0
        self._epoch_started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self._last_check < self.check_every:
            return
        self._last_check = now
        if self.on_batch:
            self.on_batch(self._epoch + 1, batch + 1)
        if self.should_stop and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        metrics = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        if self.on_epoch:
            self.on_epoch(epoch + 1, metrics, time.monotonic() - self._epoch_started)
        if self.should_stop and not self.cancelled and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True


def _is_number(v):
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def precision_policy(mixed):
    """mixed_float16 for the duration of building and training on a GPU; float32 again after, so
    the next run in the same worker process starts clean."""
    if not mixed:
        yield
        return
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def fit(
    model,
    train_ds,
    val_ds,
    cfg,
    *,
    class_weight=None,
    on_epoch=None,
    on_batch=None,
    should_stop=None,
    steps_per_epoch=None,
    verbose=0,
):
    """Train ``model``; returns (history dict, PortalCallback, EarlyStopping or None)."""
    portal = PortalCallback(on_epoch=on_epoch, on_batch=on_batch, should_stop=should_stop)
    callbacks = [portal]
    early = None
    if cfg.early_stopping and val_ds is not None:
        monitor = cfg.early_stopping_metric
        early = keras.callbacks.EarlyStopping(
            monitor=monitor,
            mode="min" if monitor.endswith("loss") else "max",
            patience=cfg.early_stopping_patience,
            restore_best_weights=True,
        )
        callbacks.append(early)
    if cfg.reduce_lr_on_plateau and val_ds is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, min_lr=1e-6, patience=max(2, cfg.early_stopping_patience // 2)
            )
        )
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=cfg.epochs,
        callbacks=callbacks,
        class_weight=class_weight,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )
    return history.history, portal, early
