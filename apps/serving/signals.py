from django.dispatch import Signal

# Sent after a batch of PredictionLog rows is written; ``logs`` is the list of saved rows.
predictions_logged = Signal()
