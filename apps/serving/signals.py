from django.dispatch import Signal

# Sent after a batch of PredictionLog rows is written; ``logs`` is the list of saved rows.
predictions_logged = Signal()

# Sent after prediction log rows were lost (spool or disk full, refused by the database) and counted;
# ``losses`` is the list of saved PredictionLogLoss rows.
predictions_lost = Signal()
