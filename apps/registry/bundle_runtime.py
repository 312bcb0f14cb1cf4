"""The small serving runtime shipped inside a model bundle (and reusable by apps.serving).

No Django here: a bundle runs it with only TensorFlow and NumPy installed. It loads the .keras file
with ``safe_mode=True`` after checking its sha256, decodes and resizes an image exactly as training
did (``apps.training.ml.data.decode_resize``), predicts, and answers HTTP through a tiny WSGI app:

    GET  /healthz    → {"status": "ok"}
    GET  /metadata   → the model's name, version, classes, input spec and sha256
    POST /predict    → body: the image bytes (PNG/JPEG/BMP/GIF) → {"class", "confidence", "probabilities"}

Run it: ``python serve.py --model model.keras --spec model.json --port 8080``.
"""

import argparse
import hashlib
import json
import os
import tempfile
import time
import uuid

MAX_IMAGE_BYTES = 20 * 1024 * 1024


class IntegrityError(Exception):
    """The model file is not the one the bundle was built with."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_resize(data, *, image_size, channels):
    """PNG/JPEG/BMP/GIF bytes → float32 [H, W, C] in 0..255, resized (antialiased) to a square.
    The same operations, in the same order, as apps.training.ml.data.decode_resize."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    image.set_shape((image_size, image_size, channels))
    return image


def register_portal_layers():
    """Make the portal's own layers (object crop, patch scoring, threshold) known to Keras before a
    safe load. In a bundle they come from ``portal_layers.py`` beside this file; inside the portal the
    caller has imported ``apps.training.ml.layers`` (this runtime imports nothing of the portal)."""
    try:
        import portal_layers  # noqa: F401  (registers on import)
    except ImportError:
        pass


def load_model_bytes(data: bytes, expected_sha256: str):
    """A Keras model from its .keras bytes, refused unless the bytes hash to ``expected_sha256``."""
    import keras

    register_portal_layers()
    actual = sha256_hex(data)
    if not expected_sha256 or actual != expected_sha256:
        raise IntegrityError(
            f"model sha256 is {actual}, expected {expected_sha256 or '(none given)'}; refusing to load it"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return keras.models.load_model(path, safe_mode=True, compile=False)


class Predictor:
    """A loaded model plus what it needs to turn image bytes into a class."""

    def __init__(self, model, *, classes, image_size, channels, meta=None):
        self.model, self.classes = model, list(classes)
        self.image_size, self.channels = int(image_size), int(channels)
        self.meta = dict(meta or {})

    @classmethod
    def from_files(cls, model_path, spec_path):
        """A predictor for the bundle's files: Keras for ``.keras``, ONNX Runtime for ``.onnx``."""
        with open(spec_path) as fh:
            spec = json.load(fh)
        if str(model_path).endswith(".onnx"):
            return OnnxPredictor.from_files(model_path, spec)
        with open(model_path, "rb") as fh:
            model = load_model_bytes(fh.read(), spec.get("sha256", ""))
        inp = spec.get("input_spec") or {}
        return cls(
            model, classes=spec["classes"], image_size=inp["image_size"], channels=inp.get("channels", 1), meta=spec
        )

    def predict_batch(self, images):
        """Class probabilities for a list of image bytes, as a NumPy array [n, k]."""
        import numpy as np
        import tensorflow as tf

        if not images:
            return np.zeros((0, len(self.classes)))
        x = tf.stack([decode_resize(b, image_size=self.image_size, channels=self.channels) for b in images])
        return np.asarray(self.model(x, training=False), dtype=np.float64)

    def predict(self, image: bytes):
        probs = self.predict_batch([image])[0]
        best = int(probs.argmax())
        return {
            "class": self.classes[best],
            "confidence": float(probs[best]),
            "probabilities": {c: float(p) for c, p in zip(self.classes, probs)},
        }


def decode_resize_pillow(data, *, image_size, channels):
    """``decode_resize`` without TensorFlow (for the ONNX engine): Pillow decodes, and each channel is
    resized as float32 with Pillow's antialiased bilinear filter, the same triangle filter TensorFlow
    uses with ``antialias=True``; values agree within a fraction of a grey level."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        im = im.convert("RGB" if channels == 3 else "L")
        arr = np.asarray(im, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    size = (image_size, image_size)
    planes = [
        np.asarray(Image.fromarray(arr[:, :, c], mode="F").resize(size, Image.BILINEAR), dtype=np.float32)
        for c in range(arr.shape[2])
    ]
    return np.stack(planes, axis=-1)


class OnnxPredictor(Predictor):
    """The same predictor on ONNX Runtime: no TensorFlow installed (requirements-onnx.txt)."""

    @classmethod
    def from_files(cls, model_path, spec):
        import onnxruntime as ort

        with open(model_path, "rb") as fh:
            data = fh.read()
        expected = spec.get("onnx_sha256", "")
        actual = sha256_hex(data)
        if not expected or actual != expected:
            raise IntegrityError(
                f"model sha256 is {actual}, expected {expected or '(none given)'}; refusing to load it"
            )
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        inp = spec.get("input_spec") or {}
        return cls(
            session,
            classes=spec["classes"],
            image_size=inp["image_size"],
            channels=inp.get("channels", 1),
            meta={**spec, "engine": f"onnxruntime {ort.__version__}"},
        )

    def predict_batch(self, images):
        import numpy as np

        if not images:
            return np.zeros((0, len(self.classes)))
        x = np.stack([decode_resize_pillow(b, image_size=self.image_size, channels=self.channels) for b in images])
        name = self.model.get_inputs()[0].name
        return np.asarray(self.model.run(None, {name: x.astype(np.float32)})[0], dtype=np.float64)


def wsgi_app(predictor):
    """A WSGI application around ``predictor`` (any WSGI server can run it; ``serve`` uses wsgiref)."""

    def respond(start_response, status, payload):
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def app(environ, start_response):
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        if path == "/healthz" and method == "GET":
            return respond(start_response, "200 OK", {"status": "ok"})
        if path == "/metadata" and method == "GET":
            keep = ("name", "version", "classes", "input_spec", "sha256", "engine")
            return respond(start_response, "200 OK", {k: predictor.meta.get(k) for k in keep})
        if path == "/predict":
            if method != "POST":
                return respond(start_response, "405 Method Not Allowed", {"error": "POST the image bytes to /predict"})
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length <= 0:
                return respond(
                    start_response, "400 Bad Request", {"error": "the request body is empty: send the image bytes"}
                )
            if length > MAX_IMAGE_BYTES:
                return respond(
                    start_response,
                    "413 Payload Too Large",
                    {"error": f"the image is {length} bytes, over the {MAX_IMAGE_BYTES} byte limit"},
                )
            data = environ["wsgi.input"].read(length)
            started = time.perf_counter()
            try:
                result = predictor.predict(data)
            except Exception as exc:  # noqa: BLE001 - an undecodable image is the client's error, said plainly
                return respond(start_response, "400 Bad Request", {"error": f"cannot read the image: {exc}"[:500]})
            # the portal's serving answer for one image: the same fields, with this bundle's model
            answer = {
                "request_id": uuid.uuid4().hex,
                "model": predictor.meta.get("name"),
                "model_version": predictor.meta.get("version"),
                "route": "production",
                "classes": predictor.classes,
                "latency_ms": (time.perf_counter() - started) * 1000.0,
                "predictions": [result],
                **result,
            }
            return respond(start_response, "200 OK", answer)
        return respond(start_response, "404 Not Found", {"error": f"no route {method} {path}"})

    return app


def serve(predictor, host="0.0.0.0", port=8080):  # nosec B104: a bundle's server runs in its own container
    from wsgiref.simple_server import make_server

    with make_server(host, port, wsgi_app(predictor)) as httpd:
        print(
            f"serving {predictor.meta.get('name')} v{predictor.meta.get('version')} on http://{host}:{port}", flush=True
        )
        httpd.serve_forever()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve a model bundle over HTTP")
    parser.add_argument("--model", default="model.keras", help="model.keras (TensorFlow) or model.onnx (ONNX Runtime)")
    parser.add_argument("--spec", default="model.json")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # nosec B104: container default; HOST narrows it
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    serve(Predictor.from_files(args.model, args.spec), args.host, args.port)


if __name__ == "__main__":
    main()
