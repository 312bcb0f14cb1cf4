from django.dispatch import Signal

# Sent (after the commit) when a PM submits the scope for approval; ``project`` and ``user``.
# The registry's inbox and notifications, a later stage, listen: projects imports none of them.
scope_submitted = Signal()

# Sent by ``project_delete`` inside its transaction, with ``project``. Each later stage's receiver
# returns the querysets of what it keeps of the project, in the order they must go (PROTECT keeps a
# row from vanishing under its dependants). Receivers connect in INSTALLED_APPS order, which is the
# stage order, so the project deletes their answers newest stage first, then itself.
project_deleting = Signal()

# Sent (after the commit) when a comment mentions members: ``comment``, ``users`` (those to tell),
# ``url`` (where the comment is) and ``message``. The registry's notifications tell them.
comment_mentioned = Signal()
