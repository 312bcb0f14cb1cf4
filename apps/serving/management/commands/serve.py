"""``python manage.py serve --host 127.0.0.1 --port 8001``: the serving process.

A threaded HTTP server (one thread per connection: decoding runs in parallel) in front of the
serving API, with every production model loaded at start, micro-batching per model, the registry
polled every SERVING_POLL_SECONDS for a newly approved version or route (loaded fully, then
swapped in), and the prediction log spooled to local disk before each answer and moved into the
database by a background thread (a killed process's spool is replayed at start). SIGTERM/SIGINT
stop it after draining the spool into the database (what the database cannot take stays spooled)."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from apps.core.netserver import NoDelayMixin

log = logging.getLogger("apps.serving")
SERVE_MIDDLEWARE = (
    "apps.monitoring.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
)


class Server(NoDelayMixin, ThreadedWSGIServer):
    request_queue_size = 256  # the listen backlog: bursts of connections wait instead of being refused


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per request would cost more than a prediction
        if self.server.verbose:
            super().log_message(format, *args)


class Command(BaseCommand):
    help = "Serve predictions: production models in memory, micro-batched, swapped without a restart."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--project", default=None, help="serve only this project's models (slug)")
        parser.add_argument("--poll", type=float, default=None, help="seconds between registry checks")

    def handle(self, *args, host, port, project, poll, verbosity, **options):
        from django.core.handlers.wsgi import WSGIHandler

        from apps.projects.models import Project

        from ...engine import Engine, set_engine
        from ...fastpath import FastPredictApp

        proj = Project.objects.get(slug=project) if project else None
        settings.ROOT_URLCONF = "apps.serving.serve_urls"
        # Token-authenticated JSON only: no sessions, CSRF, messages or static files to handle here.
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m in SERVE_MIDDLEWARE]
        engine = Engine(poll=True)
        set_engine(engine)
        engine.writer.start()  # replays at once what a stopped process left in the spool
        engine.refresh_all(proj)
        for rm_id, s in engine.state().items():
            self.stdout.write(
                f"model {rm_id}: production v{s['production']}"
                + (f", {s['mode']} v{s['candidate']}" if s["candidate"] else "")
                + (f" (refused: {s['error']})" if s["error"] else "")
            )
        engine.start_polling(poll, proj)
        server = Server((host, port), QuietHandler)
        server.verbose = verbosity > 1
        server.set_app(FastPredictApp(WSGIHandler()))

        def stop(signum, frame):
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(
            f"serving on http://{host}:{server.server_port}/ "
            f"(batches of ≤{settings.SERVING_MAX_BATCH}, wait ≤{settings.SERVING_MAX_WAIT_MS} ms)"
        )
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
            engine.stop()  # flushes the prediction log
            self.stdout.write(f"stopped; {engine.writer.written} predictions logged")
