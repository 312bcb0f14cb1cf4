import factory
from django.contrib.auth import get_user_model

from apps.accounts.models import ProjectMember, Role
from apps.projects.models import Project

PASSWORD = "portal-test-pass-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    goal = "Tell good screws from defective ones."
    # Most tests are about a later stage: the scope gate is open (tests of the gate set "draft").
    scope_status = "approved"


def member(project, *roles, username=None):
    """A user holding ``roles`` in ``project`` (no roles: a user outside the project)."""
    user = UserFactory(**({"username": username} if username else {}))
    for role in roles:
        ProjectMember.objects.get_or_create(user=user, project=project, role=role)
    return user


ALL_ROLES = list(Role.values)


# Images, items, labels and versions -----------------------------------------------------------
import io  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from apps.core.storage import blob_put  # noqa: E402
from apps.datasets.models import DatasetVersion, Item, VersionItem  # noqa: E402
from apps.labeling.models import ItemLabel, LabelClass  # noqa: E402


def png_bytes(size=(64, 64), mode="L", value=None, seed=0):
    """A PNG made here: noise from ``seed``, or a flat ``value``."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
    arr = np.full(shape, value, dtype=np.uint8) if value is not None else rng.integers(0, 256, shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def make_item(project, data=None, name=None, **kw):
    """An Item stored for real through the content-addressed storage (no ingest job)."""
    data = data if data is not None else png_bytes(seed=Item.objects.count() + 1)
    blob = blob_put(data, ext="png", content_type="image/png")
    with Image.open(io.BytesIO(data)) as im:
        w, h, mode, fmt = im.width, im.height, im.mode, im.format
    item, _ = Item.objects.get_or_create(
        project=project,
        sha256=blob.sha256,
        defaults=dict(
            blob=blob,
            original_name=name or f"{blob.sha256[:8]}.png",
            width=w,
            height=h,
            mode=mode,
            format=fmt,
            bytes=len(data),
            **kw,
        ),
    )
    return item


def label_classes(project, names=("good", "defect")):
    colors = ["#1a7f4b", "#b42318", "#2456c7", "#a86200", "#6b3fa0"]
    return [
        LabelClass.objects.get_or_create(
            project=project, name=n, defaults={"color": colors[i % len(colors)], "hotkey": str(i + 1), "order": i}
        )[0]
        for i, n in enumerate(names)
    ]


def set_label(item, label_class, user=None, source="labeler"):
    obj, created = ItemLabel.objects.get_or_create(
        item=item, defaults={"label_class": label_class, "updated_by": user, "source": source}
    )
    if not created:
        obj.label_class, obj.updated_by, obj.source, obj.revision = label_class, user, source, obj.revision + 1
        obj.save()
    return obj


def make_version(project, entries, number=None, status="ready", seed=0):
    """A ready DatasetVersion from [(item, split, label)] written directly (no freeze service)."""
    number = number or (DatasetVersion.objects.filter(project=project).count() + 1)
    classes = sorted({label for _, _, label in entries})
    counts = {}
    for _, split, label in entries:
        counts.setdefault(split, {}).setdefault(label, 0)
        counts[split][label] += 1
    version = DatasetVersion.objects.create(
        project=project,
        number=number,
        status=status,
        seed=seed,
        classes=classes,
        counts=counts,
        item_count=len(entries),
        fractions={"train": 0.7, "val": 0.15, "test": 0.15},
        content_hash=f"{number:064x}",
    )
    VersionItem.objects.bulk_create([VersionItem(version=version, item=i, split=s, label=lab) for i, s, lab in entries])
    return version


def mark_profiled(version):
    """A succeeded profile with no failed assertion, so the version passes the data-quality gate."""
    from django.utils import timezone

    from apps.profiling.models import ProfileRun

    return ProfileRun.objects.create(
        project=version.project,
        version=version,
        status="succeeded",
        total=version.item_count,
        processed=version.item_count,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )


def approve_scope(project, measurement=None):
    """The scope as a manager approved it: an approved ScopeRevision of the project's current state
    (with ``measurement`` set first, when given). The gate and monitoring read these targets."""
    from django.db.models import Max

    from apps.projects.models import ScopeRevision, ScopeStatus

    if measurement is not None:
        project.measurement = measurement
    project.scope_status = ScopeStatus.APPROVED
    project.save()
    number = (project.scope_revisions.aggregate(m=Max("number"))["m"] or 0) + 1
    return ScopeRevision.objects.create(
        project=project,
        number=number,
        data=project.scope_snapshot(),
        status=ScopeStatus.APPROVED,
        comment="approved (test)",
    )


def field_errors(html, name="__all__"):
    """The errors a page shows beside its field ``name`` (``__all__``: above the form), as text."""
    import re

    from django.utils.html import strip_tags

    m = re.search(rf'<ul class="errorlist" data-field="{re.escape(name)}">(.*?)</ul>', html, re.S)
    if not m:
        return []
    from html import unescape

    return [unescape(strip_tags(li)).strip() for li in re.findall(r"<li>(.*?)</li>", m.group(1), re.S)]
