"""Image embeddings for the drift measure: the penultimate layer of a stored .keras model (loaded
safely) over encoded images. Pure computation, used by the reference-embedding job and by drift."""

import numpy as np


def embed_images(keras_bytes, images, *, image_size, channels, batch_size=16):
    """Penultimate-layer outputs of the stored .keras model for a list of encoded images."""
    import os
    import tempfile

    import keras
    import tensorflow as tf

    from apps.training.ml import layers  # noqa: F401  (the portal's own layers, registered for a safe load)
    from apps.training.ml.data import decode_resize

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(keras_bytes)
        model = keras.models.load_model(path, compile=False, safe_mode=True)  # no user code runs
    penultimate = keras.Model(model.inputs, model.layers[-2].output)
    vectors = []
    for i in range(0, len(images), batch_size):
        batch = tf.stack(
            [decode_resize(b, image_size=image_size, channels=channels) for b in images[i : i + batch_size]]
        )
        out = penultimate(batch, training=False)
        out = tf.reshape(out, (tf.shape(out)[0], -1))
        vectors.extend(np.asarray(out, dtype=np.float32).round(5).tolist())
    return vectors
