from django.dispatch import Signal

# Sent after a batch of PredictionLog rows is written; ``logs`` is the list of saved rows.
predictions_logged = Signal()

# Sent after prediction log rows were lost (spool or disk full, refused by the database) and counted;
# ``losses`` is the list of saved PredictionLogLoss rows.
predictions_lost = Signal()

# Called as ``fn(endpoint, milliseconds, error)`` after every request serving's fast path answers
# (it bypasses Django's middleware). Monitoring, a later stage, registers its request counters at
# start (``register_request_observer``); serving never imports it.
request_observers = []


def register_request_observer(fn):
    if fn not in request_observers:
        request_observers.append(fn)
