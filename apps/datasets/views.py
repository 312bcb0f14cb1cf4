"""HTML pages of the datasets app: the item grid, upload, import results, versions."""

import io

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views import View
from django.views.generic import TemplateView
from PIL import Image

from apps.accounts.models import Role
from apps.core.forms import FormActionView
from apps.core.storage import blob_read
from apps.projects.permissions import ProjectAccessMixin

from . import selectors, services
from .forms import FreezeForm
from .labels import label_reader
from .models import DatasetVersion, ImportJob, Split


class DataView(ProjectAccessMixin, TemplateView):
    """The grid of thumbnails: filters (label, status, version + split) and seek paging."""

    template_name = "datasets/data.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        q = self.request.GET
        version = None
        if q.get("version", "").isdigit():
            version = DatasetVersion.objects.filter(project=self.project, number=int(q["version"])).first()
            if version is None:
                raise Http404("No such version.")
        after = int(q["after"]) if q.get("after", "").isdigit() else None
        filters = {"label": q.get("label", ""), "status": q.get("status", ""), "split": q.get("split", "")}
        page = selectors.items_page(self.project, version=version, after=after, **filters)
        base = {k: v for k, v in {**filters, "version": version.number if version else ""}.items() if v}
        ctx.update(
            page=page,
            filters=filters,
            version=version,
            after=after,
            base_query=base,
            labels=selectors.project_labels(self.project),
            splits=Split.values,
            versions=DatasetVersion.objects.filter(project=self.project, status="ready"),
            can_write=Role.DATA_SCIENTIST in self.roles,
            jobs=ImportJob.objects.filter(project=self.project).order_by("-pk")[:5],
        )
        return ctx


class UploadView(ProjectAccessMixin, TemplateView):
    """Drag and drop files, folders or zips; the page uploads them in resumable chunks."""

    template_name = "datasets/upload.html"
    read_roles = (Role.DATA_SCIENTIST,)
    write_roles = (Role.DATA_SCIENTIST,)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(
            chunk_size=settings.DATASET_UPLOAD_CHUNK_BYTES,
            max_file=settings.DATASET_MAX_FILE_BYTES,
            max_zip=settings.DATASET_ZIP_MAX_BYTES,
            formats=settings.DATASET_ALLOWED_FORMATS,
            max_megapixels=f"{settings.DATASET_MAX_PIXELS / 1e6:g}",
        )
        return ctx


class ImportView(ProjectAccessMixin, TemplateView):
    template_name = "datasets/import.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        job = ImportJob.objects.filter(project=self.project, pk=kwargs["job_id"]).select_related("created_by").first()
        if job is None:
            raise Http404("No such import.")
        ctx["job"] = job
        return ctx


class ItemView(ProjectAccessMixin, TemplateView):
    template_name = "datasets/item.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        item = selectors.item_for_project(self.project, kwargs["item_id"])
        if item is None:
            raise Http404("No such item.")
        ctx["item"] = item
        ctx["label"] = getattr(item, "current_label", None)
        ctx["entries"] = item.version_entries.select_related("version").order_by("-version__number")[:20]
        # The boxes drawn over the image: a version's (?version=N), else the current label's.
        shown = self.request.GET.get("version", "")
        entry = next((e for e in ctx["entries"] if str(e.version.number) == shown), None)
        ctx["boxes_of"] = f"v{entry.version.number}" if entry else "current label"
        ctx["regions"] = entry.regions if entry else (getattr(ctx["label"], "regions", None) or [])
        return ctx


def _stripped(data: bytes) -> tuple[bytes, str]:
    """The image re-encoded from its pixels alone: EXIF, XMP, ICC, text chunks and GPS are gone."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        fmt = "JPEG" if im.format == "JPEG" else "PNG"
        clean = Image.frombytes(im.mode, im.size, im.tobytes()) if im.mode != "P" else im.convert("RGBA")
        if fmt == "JPEG" and clean.mode not in ("L", "RGB", "CMYK"):
            clean = clean.convert("RGB")
        buf = io.BytesIO()
        clean.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {"compress_level": 1}))
        return buf.getvalue(), f"image/{fmt.lower()}"


class ItemImageView(ProjectAccessMixin, View):
    """The full image, for members only, with every metadata block stripped (re-encoded on serve)."""

    def get(self, request, slug, item_id):
        item = selectors.item_for_project(self.project, item_id)
        if item is None:
            raise Http404("No such item.")
        body, ctype = _stripped(blob_read(item.blob))
        resp = HttpResponse(body, content_type=ctype)
        resp["Cache-Control"] = "private, max-age=3600"
        resp["X-Content-Type-Options"] = "nosniff"
        return resp


def _thumbnail_on_the_fly(data: bytes, size=192) -> bytes:
    """A small JPEG from the pixels alone, for items whose thumbnail was not made at ingest."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("L" if im.mode == "L" else "RGB", (size, size))
        im = im.convert("L" if im.mode in ("L", "I;16", "I", "1") else "RGB")
        im.thumbnail((size, size), reducing_gap=2.0)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=82)
    return buf.getvalue()


class ItemThumbView(ProjectAccessMixin, View):
    """The thumbnail, made from pixels only (so it carries no metadata). The one thumbnail view every
    page of the portal uses (grid, labeling, profile outliers, misclassified gallery)."""

    def get(self, request, slug, item_id):
        item = selectors.item_for_project(self.project, item_id)
        if item is None:
            raise Http404("No such item.")
        if item.thumbnail is not None:
            resp = HttpResponse(blob_read(item.thumbnail), content_type=item.thumbnail.content_type or "image/jpeg")
        else:
            try:
                resp = HttpResponse(_thumbnail_on_the_fly(blob_read(item.blob)), content_type="image/jpeg")
            except Exception:  # noqa: BLE001 - an unreadable file has no picture to show
                return HttpResponse("This image cannot be decoded.", status=422, content_type="text/plain")
        resp["Cache-Control"] = "private, max-age=86400"
        resp["X-Content-Type-Options"] = "nosniff"
        return resp


class VersionsView(ProjectAccessMixin, FormActionView, TemplateView):
    """Versions of the project; a data scientist freezes a new one here."""

    template_name = "datasets/versions.html"
    write_roles = (Role.DATA_SCIENTIST,)
    form_class = FreezeForm

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        labeled = label_reader().count(self.project)
        ctx.update(
            versions=list(DatasetVersion.objects.filter(project=self.project).select_related("created_by")),
            form=FreezeForm(),
            can_write=Role.DATA_SCIENTIST in self.roles,
            labeled=labeled,
            unlabeled=self.project.items.count() - labeled,
            folder_split=self.project.items.filter(
                original_name__iregex=r"(^|/)(train|training|val|valid|validation|dev|test|testing)/"
            ).count(),
        )
        return ctx

    def form_valid(self, form):
        d = form.cleaned_data
        version = services.dataset_version_create(
            project=self.project,
            user=self.request.user,
            name=d["name"],
            note=d["note"],
            seed=d["seed"] or 0,
            fractions={k: d[k] for k in ("train", "val", "test")},
            split_from=d["split_from"] or "seeded",
        )
        messages.success(self.request, f"Version {version.number} frozen: {version.item_count} items.")
        return redirect("datasets-version", self.project.slug, version.number)


class VersionView(ProjectAccessMixin, TemplateView):
    template_name = "datasets/version.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        version = DatasetVersion.objects.filter(project=self.project, number=kwargs["number"]).first()
        if version is None:
            raise Http404("No such version.")
        rows = []
        for label in version.classes:
            counts = [version.counts.get(s, {}).get(label, 0) for s in ("train", "val", "test")]
            rows.append({"label": label, "counts": counts, "total": sum(counts)})
        ctx.update(
            version=version,
            rows=rows,
            runs=selectors.version_runs(version),
            totals=[sum(version.counts.get(s, {}).values()) for s in ("train", "val", "test")],
            others=DatasetVersion.objects.filter(project=self.project).exclude(pk=version.pk),
        )
        return ctx


class VersionDiffView(ProjectAccessMixin, TemplateView):
    template_name = "datasets/diff.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        a, b = self.request.GET.get("a", ""), self.request.GET.get("b", "")
        versions = {v.number: v for v in DatasetVersion.objects.filter(project=self.project)}
        if not (a.isdigit() and b.isdigit()) or int(a) not in versions or int(b) not in versions:
            raise Http404("Pick two versions of this project.")
        ctx.update(
            a=versions[int(a)], b=versions[int(b)], diff=selectors.version_diff(versions[int(a)], versions[int(b)])
        )
        return ctx
