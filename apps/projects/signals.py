from django.dispatch import Signal

# Sent (after the commit) when a PM submits the scope for approval; ``project`` and ``user``.
# The registry's inbox and notifications, a later stage, listen: projects imports none of them.
scope_submitted = Signal()
