"""The team's conversation: comments on a project's items, runs, model versions, promotion requests
and alerts, with @mentions of its members.

Each stage registers the kind of object it lets people comment on (``register_commentable`` in its
AppConfig.ready), so this module names no later stage. A mention is a member's username after "@";
the people mentioned are told after the commit (``signals.comment_mentioned``: the registry's
notifications put it in their inbox and queue their email). Text is stored as typed and escaped
wherever it is shown; it is limited to ``MAX_LENGTH`` characters and its author may edit it for
``EDIT_WINDOW`` after posting.
"""

import datetime as dt
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from apps.accounts.models import ProjectMember
from apps.core.audit import audit_record

from .models import Comment
from .permissions import roles_of
from .signals import comment_mentioned

MAX_LENGTH = 4000
EDIT_WINDOW = dt.timedelta(minutes=15)
MENTION_RE = re.compile(r"(?<![\w@.])@([A-Za-z0-9_.+-]{1,150})")


@dataclass
class Commentable:
    kind: str
    title: str  # "run", "model version"…
    find: object  # (project, pk) -> the object, or None when the project has none with that pk
    url: object  # (project, obj) -> its page
    label: object = str  # obj -> how a notification names it


_kinds: dict[str, Commentable] = {}


def register_commentable(kind, title, find, url, label=str):
    _kinds[kind] = Commentable(kind, title, find, url, label)


def kinds():
    return dict(_kinds)


def target_of(project, kind, target_id):
    """(Commentable, object) or a ValidationError naming what is wrong."""
    spec = _kinds.get(str(kind))
    if spec is None:
        raise ValidationError(
            {"kind": f"{str(kind)[:40]!r} cannot take comments; these can: {', '.join(sorted(_kinds))}."}
        )
    try:
        pk = int(target_id)
    except (TypeError, ValueError):
        raise ValidationError({"target": f"{str(target_id)[:40]!r} is not an id."}) from None
    obj = spec.find(project, pk)
    if obj is None:
        raise ValidationError({"target": f"This project has no {spec.title} {pk}."})
    return spec, obj


def _body(text):
    text = ("" if text is None else str(text)).replace("\r\n", "\n").strip()
    if not text:
        raise ValidationError({"body": "Write something first: the comment is empty."})
    if len(text) > MAX_LENGTH:
        raise ValidationError({"body": f"At most {MAX_LENGTH:,} characters (this one has {len(text):,})."})
    return text


def mentioned_members(project, text, *, author=None):
    """The project's members named as @username in ``text`` (the author never mentions themself)."""
    names = {m.group(1).rstrip(".") for m in MENTION_RE.finditer(text)}
    if not names:
        return []
    users = get_user_model().objects.filter(
        username__in=names, is_active=True, pk__in=ProjectMember.objects.filter(project=project).values("user_id")
    )
    return [u for u in users.order_by("username") if author is None or u.pk != author.pk]


def _require_member(user, project):
    if not roles_of(user, project):
        raise PermissionDenied("Only the project's members comment here.")


def _tell(comment, users, spec, obj):
    if not users:
        return
    url = spec.url(comment.project, obj) + f"#comment-{comment.pk}"
    excerpt = comment.body if len(comment.body) <= 140 else comment.body[:139] + "…"
    transaction.on_commit(
        lambda: comment_mentioned.send(
            sender=Comment,
            comment=comment,
            users=users,
            url=url,
            message=f"{comment.author.username} mentioned you on {spec.title} {spec.label(obj)}: “{excerpt}”",
        )
    )


@transaction.atomic
def comment_post(*, project, user, kind, target_id, body):
    _require_member(user, project)
    spec, obj = target_of(project, kind, target_id)
    text = _body(body)
    comment = Comment.objects.create(project=project, kind=spec.kind, target_id=obj.pk, author=user, body=text)
    mentioned = mentioned_members(project, text, author=user)
    comment.mentions.set(mentioned)
    audit_record(
        actor=user,
        action="comment.posted",
        project=project,
        obj=comment,
        data={"on": f"{spec.kind} {obj.pk}", "mentions": [u.username for u in mentioned], "length": len(text)},
    )
    _tell(comment, mentioned, spec, obj)
    return comment


def editable(comment, user, now=None):
    """None when ``user`` may edit ``comment`` now, else why not."""
    if comment.author_id is None or user.pk != comment.author_id:
        return "Only its author may edit a comment."
    now = now or timezone.now()
    if now - comment.created_at > EDIT_WINDOW:
        return (
            f"A comment can be edited for {EDIT_WINDOW.seconds // 60} minutes after it is posted; "
            f"this one was posted {timesince(comment.created_at, now)} ago."
        )
    return None


@transaction.atomic
def comment_edit(*, comment, user, body):
    """The author changes the text within the window; people newly mentioned are told."""
    comment = Comment.objects.select_for_update().get(pk=comment.pk)
    _require_member(user, comment.project)
    why = editable(comment, user)
    if why:
        raise PermissionDenied(why)
    spec, obj = target_of(comment.project, comment.kind, comment.target_id)
    text = _body(body)
    before = set(comment.mentions.values_list("pk", flat=True))
    old_length = len(comment.body)
    comment.body, comment.edited_at = text, timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    mentioned = mentioned_members(comment.project, text, author=user)
    comment.mentions.set(mentioned)
    audit_record(
        actor=user,
        action="comment.edited",
        project=comment.project,
        obj=comment,
        data={"length": [old_length, len(text)], "mentions": [u.username for u in mentioned]},
    )
    _tell(comment, [u for u in mentioned if u.pk not in before], spec, obj)
    return comment


def comments_on(project, kind, target_id):
    return list(
        Comment.objects.filter(project=project, kind=kind, target_id=target_id)
        .select_related("author")
        .prefetch_related("mentions")
    )


def render_body(comment):
    """The text, escaped, with the members it mentions marked (never the raw text as HTML)."""
    names = {u.username for u in comment.mentions.all()}
    parts, last = [], 0
    for m in MENTION_RE.finditer(comment.body):
        name = m.group(1).rstrip(".")
        if name not in names:
            continue
        parts.append(format_html("{}", comment.body[last : m.start()]))
        parts.append(format_html('<span class="mention" data-user="{}">@{}</span>', name, name))
        last = m.start() + 1 + len(name)
    parts.append(format_html("{}", comment.body[last:]))
    return format_html_join("", "{}", ((p,) for p in parts))
