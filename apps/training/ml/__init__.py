"""The TensorFlow/Keras side of training: plain Python with no Django import, so that a worker
anywhere (a CPU box, a GPU host, a notebook, a bench script) can run it.

- ``config``: the hyperparameters of a run, their ranges and checks
- ``data``: the tf.data input pipeline (read, decode, resize, cache, augment, batch, prefetch)
- ``builders``: the built-in CNNs and fine-tuning from an uploaded .keras file (safe_mode)
- ``fit``: training with callbacks (per-epoch report, cancel, early stopping, class weights)
- ``evaluate``: test-split metrics, confusion matrix, ROC/PR curves, misclassified samples
- ``export``: the .keras file, a zipped SavedModel and the model card
- ``run``: ``train_and_evaluate`` — all of the above in order
"""
