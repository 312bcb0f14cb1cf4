"""Labels in and out: import (CSV of file name/sha256 → class, class-per-folder zip) and export of a
dataset version (CSV, JSON, ImageNet-style folders as a zip)."""

import csv
import hashlib
import io
import json
import posixpath
import tempfile
import zipfile

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.audit import audit_record
from apps.core.images import size_refusal
from apps.core.storage import blob_open
from apps.datasets.models import Item

from .models import ItemLabel
from .services import item_label_set, label_class_get_or_create

MAX_CSV_BYTES = 20_000_000
MAX_CSV_ROWS = 200_000
MAX_ZIP_ENTRY = 64_000_000
NAME_COLUMNS = ("file_name", "filename", "file", "name", "path")
CLASS_COLUMNS = ("class", "label")
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class ImportReport:
    def __init__(self):
        self.rows = []  # (where, result, detail)
        self.applied = self.unchanged = self.rejected = 0

    def add(self, where, result, detail=""):
        self.rows.append({"where": where, "result": result, "detail": detail})
        if result == "applied":
            self.applied += 1
        elif result == "unchanged":
            self.unchanged += 1
        else:
            self.rejected += 1

    def as_dict(self):
        return {"applied": self.applied, "unchanged": self.unchanged, "rejected": self.rejected, "rows": self.rows}


def _apply(project, user, report, where, item, class_name, source):
    try:
        cls = label_class_get_or_create(project=project, name=class_name)
    except ValidationError as exc:
        report.add(where, "rejected", "; ".join(exc.messages))
        return
    current = ItemLabel.objects.filter(item=item).only("label_class_id").first()
    if current is not None and current.label_class_id == cls.pk:
        report.add(where, "unchanged", f"{item} is already {cls.name}")
        return
    item_label_set(item=item, label_class=cls, user=user, source=source)
    report.add(where, "applied", f"{item} → {cls.name}")


def labels_import_csv(*, project, user, fileobj, filename="labels.csv"):
    """Rows of (file name and/or sha256, class). A row is matched by sha256 first, else by the
    item's original file name (which must then be unique in the project). Good rows are applied,
    bad rows reported; a file that is not a readable CSV changes nothing."""

    raw = fileobj.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise ValidationError({"file": [size_refusal(len(raw), MAX_CSV_BYTES, what=filename, per="", at_least=True)]})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": [f"{filename}: not UTF-8 text; save the CSV as UTF-8."]}) from None
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = headers
    name_col = next((c for c in NAME_COLUMNS if c in headers), None)
    sha_col = "sha256" if "sha256" in headers else None
    class_col = next((c for c in CLASS_COLUMNS if c in headers), None)
    if class_col is None or (name_col is None and sha_col is None):
        raise ValidationError(
            {
                "file": [
                    f"{filename}: the header must name a class column (class or label) and a file name column "
                    f"(file_name) or sha256; found {', '.join(headers) or 'no header'}."
                ]
            }
        )
    rows = list(reader)
    if len(rows) > MAX_CSV_ROWS:
        raise ValidationError({"file": [f"{filename}: more than {MAX_CSV_ROWS:,} rows; split it."]})
    shas = {(r.get(sha_col) or "").strip().lower() for r in rows} if sha_col else set()
    by_sha = {i.sha256: i for i in Item.objects.filter(project=project, sha256__in=shas - {""})}
    names = (
        {posixpath.basename((r.get(name_col) or "").strip().replace("\\", "/")) for r in rows} if name_col else set()
    )
    by_name = {}
    for it in Item.objects.filter(project=project, original_name__in=names - {""}):
        by_name.setdefault(it.original_name, []).append(it)
    report = ImportReport()
    with transaction.atomic():
        for n, r in enumerate(rows, start=2):
            where = f"{filename} line {n}"
            cls = (r.get(class_col) or "").strip()
            sha = (r.get(sha_col) or "").strip().lower() if sha_col else ""
            name = posixpath.basename((r.get(name_col) or "").strip().replace("\\", "/")) if name_col else ""
            if not cls:
                report.add(where, "rejected", "the class is empty")
                continue
            item = by_sha.get(sha) if sha else None
            if item is None and sha and not name:
                report.add(where, "rejected", f"no item with sha256 {sha[:12]}… in this project")
                continue
            if item is None and name:
                found = by_name.get(name, [])
                if len(found) > 1:
                    report.add(where, "rejected", f"{len(found)} items are named {name}; give the sha256")
                    continue
                item = found[0] if found else None
            if item is None:
                report.add(where, "rejected", f"no item named {name or '(blank)'} in this project")
                continue
            _apply(project, user, report, where, item, cls, "import")
        audit_record(
            actor=user,
            action="labeling.labels_imported",
            project=project,
            data={"file": filename, "applied": report.applied, "rejected": report.rejected},
        )
    return report


def labels_import_folders(*, project, user, fileobj, filename="labels.zip"):
    """A zip of class-per-folder images (``good/a.png``, ``defect/b.png``; a single wrapping top
    folder is fine). Each image is matched to an item by its content (sha256)."""

    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError):
        raise ValidationError({"file": [f"{filename}: not a zip file."]}) from None
    entries = [
        e
        for e in zf.infolist()
        if not e.is_dir() and not posixpath.basename(e.filename).startswith(".") and "__MACOSX" not in e.filename
    ]
    if not entries:
        raise ValidationError({"file": [f"{filename}: the zip holds no files."]})
    report = ImportReport()
    found = []
    for e in entries:
        parts = e.filename.replace("\\", "/").split("/")
        ext = posixpath.splitext(parts[-1])[1].lower()
        if len(parts) < 2:
            report.add(e.filename, "rejected", "not inside a class folder (expected class/file.png)")
            continue
        if ext not in IMAGE_EXTS:
            report.add(e.filename, "rejected", f"not an image file ({ext or 'no extension'})")
            continue
        if e.file_size > MAX_ZIP_ENTRY:
            report.add(e.filename, "rejected", size_refusal(e.file_size, MAX_ZIP_ENTRY, what="The entry", per=""))
            continue
        h = hashlib.sha256()
        with zf.open(e) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        found.append((e.filename, parts[-2], h.hexdigest()))
    items = {i.sha256: i for i in Item.objects.filter(project=project, sha256__in=[s for _, _, s in found])}
    with transaction.atomic():
        for where, cls, sha in found:
            item = items.get(sha)
            if item is None:
                report.add(
                    where,
                    "rejected",
                    "no item with this image in the project; import the images on the Data page first",
                )
                continue
            _apply(project, user, report, where, item, cls, "import")
        audit_record(
            actor=user,
            action="labeling.labels_imported",
            project=project,
            data={"file": filename, "applied": report.applied, "rejected": report.rejected},
        )
    return report


# Export -------------------------------------------------------------------------------------------


def _entries(version):
    return version.entries.select_related("item", "item__blob").order_by("split", "label", "item_id")


def _file_name(item):
    return posixpath.basename(item.original_name) if item.original_name else f"{item.sha256[:16]}.{item.format.lower()}"


def version_csv(version):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file_name", "sha256", "split", "label"])
    for e in _entries(version):
        w.writerow([_file_name(e.item), e.item.sha256, e.split, e.label])
    return buf.getvalue()


def version_json(version):
    return json.dumps(
        {
            "project": version.project.slug,
            "version": version.number,
            "classes": version.classes,
            "content_hash": version.content_hash,
            "items": [
                {"file_name": _file_name(e.item), "sha256": e.item.sha256, "split": e.split, "label": e.label}
                for e in _entries(version)
            ],
        },
        indent=1,
    )


def version_folders_zip(version):
    """ImageNet-style ``split/label/file`` folders in a zip (a temporary file, rewound)."""

    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    used = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for e in _entries(version):
            name = f"{e.split}/{e.label}/{_file_name(e.item)}"
            if name in used:  # two images with one file name: keep both, told apart by their hash
                base, ext = posixpath.splitext(name)
                name = f"{base}-{e.item.sha256[:8]}{ext}"
            used.add(name)
            with blob_open(e.item.blob) as src, zf.open(name, "w") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
    out.seek(0)
    return out
