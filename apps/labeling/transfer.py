"""Labels in and out: import (CSV of file name/sha256 → class, class-per-folder zip, COCO JSON boxes)
and export of a dataset version or of the current labels (CSV, JSON, ImageNet-style folders as a zip;
boxes as COCO JSON, YOLO text files in a zip, and a CSV of one row per box)."""

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

from .models import ItemLabel, LabelClass
from .services import item_label_set, label_class_get_or_create, regions_clean

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


def _read_limited(fileobj, filename):
    """The uploaded file's bytes, refused whole (nothing applied) past MAX_CSV_BYTES."""
    raw = fileobj.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise ValidationError({"file": [size_refusal(len(raw), MAX_CSV_BYTES, what=filename, per="", at_least=True)]})
    return raw


def labels_import_csv(*, project, user, fileobj, filename="labels.csv"):
    """Rows of (file name and/or sha256, class). A row is matched by sha256 first, else by the
    item's original file name (which must then be unique in the project). Good rows are applied,
    bad rows reported; a file that is not a readable CSV changes nothing."""

    raw = _read_limited(fileobj, filename)
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


def labels_import_coco(*, project, user, fileobj, filename="boxes.json"):
    """Boxes from a COCO object-detection JSON. Each image is matched to an item by its ``sha256``
    (a field the portal's own COCO export writes) or else by file name (unique in the project);
    each box is checked (a known class, a positive size, inside the image) and gets its own verdict.
    The boxes that pass become the item's boxes (its label kept; an unlabeled item takes the image's
    ``label`` or its boxes' class); nothing is stored from a refused box. A file that is not COCO
    JSON changes nothing."""
    raw = _read_limited(fileobj, filename)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
        images = {im["id"]: im for im in doc["images"]}
        categories = {c["id"]: str(c["name"]) for c in doc.get("categories", [])}
        annotations = list(doc["annotations"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise ValidationError(
            {"file": [f"{filename}: not COCO JSON (an object with images, annotations and categories)."]}
        ) from None
    if len(annotations) > MAX_CSV_ROWS:
        raise ValidationError({"file": [f"{filename}: more than {MAX_CSV_ROWS:,} boxes; split it."]})
    classes = {c.name: c for c in LabelClass.objects.filter(project=project)}
    items = list(Item.objects.filter(project=project).only("pk", "sha256", "original_name", "width", "height"))
    by_sha = {i.sha256: i for i in items}
    by_name = {}
    for it in items:
        by_name.setdefault(posixpath.basename(it.original_name or ""), []).append(it)
    boxes_of = {}
    for n, a in enumerate(annotations, start=1):
        boxes_of.setdefault(a.get("image_id") if isinstance(a, dict) else None, []).append((n, a))
    report = ImportReport()
    with transaction.atomic():
        for image_id, boxes in boxes_of.items():
            im = images.get(image_id) or {}
            name = posixpath.basename(str(im.get("file_name", "")).replace("\\", "/"))
            item = by_sha.get(str(im.get("sha256", "")).lower())
            found = by_name.get(name, []) if item is None else [item]
            refusal = (
                f"no image {image_id!r} in the file's images"
                if not im
                else f"{len(found)} items are named {name}; give the sha256"
                if len(found) > 1
                else f"no item named {name or '(blank)'} or with that sha256 in this project"
                if not found
                else ""
            )
            kept = []
            for n, a in boxes:
                where = f"{name or image_id} box {a.get('id', n) if isinstance(a, dict) else n}"
                if refusal:
                    report.add(where, "rejected", refusal)
                    continue
                cls = categories.get(a.get("category_id"))
                if cls not in classes:
                    report.add(
                        where, "rejected", f"unknown class {cls or a.get('category_id')!r}; add it to the schema first"
                    )
                    continue
                try:
                    x, y, w, h = a["bbox"]
                    [box] = regions_clean([{"x": x, "y": y, "w": w, "h": h, "class": cls}], item=found[0])
                except (KeyError, TypeError, ValueError):
                    report.add(where, "rejected", "bbox must be [x, y, width, height] in pixels")
                    continue
                except ValidationError as exc:
                    report.add(where, "rejected", " ".join(exc.messages).replace("Box 1 ", "the box "))
                    continue
                kept.append((where, box))
            if kept:
                _apply_boxes(project, user, report, found[0], kept, im.get("label"), classes)
        audit_record(
            actor=user,
            action="labeling.boxes_imported",
            project=project,
            data={"file": filename, "applied": report.applied, "rejected": report.rejected},
        )
    return report


def _apply_boxes(project, user, report, item, kept, image_label, classes):
    """Set ``item``'s boxes to the ``kept`` ones (each reported), keeping its label."""
    current = ItemLabel.objects.filter(item=item).select_related("label_class").first()
    boxes = [b for _, b in kept]
    if current is not None and current.regions == boxes:
        for where, _ in kept:
            report.add(where, "unchanged", f"{item} already has this box")
        return
    if current is not None:
        cls = current.label_class
    else:
        names = [b["class"] for b in boxes]
        cls = classes.get(image_label) or classes[max(set(names), key=names.count)]
    item_label_set(item=item, label_class=cls, user=user, source="import", regions=boxes)
    for where, b in kept:
        report.add(where, "applied", f"{item}: {b['class']} box {b['x']:.0f},{b['y']:.0f} {b['w']:.0f}×{b['h']:.0f}")


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


IMPORTERS = {"csv": labels_import_csv, "folders": labels_import_folders, "coco": labels_import_coco}


# Export -------------------------------------------------------------------------------------------


def _entries(version):
    return version.entries.select_related("item", "item__blob").order_by("split", "label", "item_id")


class Entry:
    """One labeled item as an export writes it: the item, its split ("" for current labels), label, boxes."""

    __slots__ = ("item", "split", "label", "regions")

    def __init__(self, item, split, label, regions):
        self.item, self.split, self.label, self.regions = item, split, label, regions or []


class CurrentLabels:
    """The project's labels as they are now, shaped like a version for the box exports."""

    def __init__(self, project):
        self.project, self.number, self.content_hash = project, None, ""
        self.classes = sorted(
            set(ItemLabel.objects.filter(item__project=project).values_list("label_class__name", flat=True))
        )

    @property
    def base(self):
        return f"{self.project.slug}-current"

    def rows(self):
        labels = ItemLabel.objects.filter(item__project=self.project).select_related("item", "label_class")
        for lab in labels.order_by("label_class__name", "item_id").iterator(chunk_size=2000):
            yield Entry(lab.item, "", lab.label_class.name, lab.regions)


def export_rows(source):
    """The entries of a dataset version, or of ``CurrentLabels``."""
    if isinstance(source, CurrentLabels):
        return source.rows()
    return (Entry(e.item, e.split, e.label, e.regions) for e in _entries(source))


def _box_classes(source, rows):
    """Category names: the labels and every box's own class, sorted (ids follow this order)."""
    names = set(source.classes)
    for e in rows:
        names.update(r.get("class") or e.label for r in e.regions)
    return sorted(names)


def boxes_coco(source):
    """COCO object-detection JSON: images (with their sha256, split and label), categories, and one
    annotation per box ([x, y, w, h] in pixels, as COCO has it)."""
    rows = list(export_rows(source))
    names = _box_classes(source, rows)
    cat = {n: i for i, n in enumerate(names, start=1)}
    images, annotations = [], []
    for image_id, e in enumerate(rows, start=1):
        it = e.item
        images.append(
            {
                "id": image_id,
                "file_name": _file_name(it),
                "width": it.width,
                "height": it.height,
                "sha256": it.sha256,
                "split": e.split,
                "label": e.label,
            }
        )
        for r in e.regions:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat[r.get("class") or e.label],
                    "bbox": [r["x"], r["y"], r["w"], r["h"]],
                    "area": round(r["w"] * r["h"], 2),
                    "iscrowd": 0,
                }
            )
    what = f"v{source.number}" if source.number else "current labels"
    info = {"description": f"{source.project.slug} {what}"}
    return json.dumps(
        {
            "info": {**info, "content_hash": source.content_hash},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in cat.items()],
        },
        indent=1,
    )


def boxes_csv(source):
    """One row per box (an image without boxes: one row with empty box columns)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file_name", "sha256", "split", "label", "box_class", "x", "y", "w", "h", "width", "height"])
    for e in export_rows(source):
        it = e.item
        for r in e.regions or [None]:
            box = [r.get("class") or e.label, r["x"], r["y"], r["w"], r["h"]] if r else ["", "", "", "", ""]
            w.writerow([_file_name(it), it.sha256, e.split, e.label, *box, it.width, it.height])
    return buf.getvalue()


def boxes_yolo_zip(source):
    """YOLO labels: ``classes.txt`` and ``data.yaml`` (the class names in id order), and one
    ``labels/<split>/<image>.txt`` per image with a line ``class cx cy w h`` per box, normalized to
    the image (an image without boxes gets an empty file: a background image)."""
    rows = list(export_rows(source))
    names = _box_classes(source, rows)
    cid = {n: i for i, n in enumerate(names)}
    out = io.BytesIO()
    used = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("classes.txt", "\n".join(names) + "\n")
        zf.writestr("data.yaml", "names:\n" + "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(names)))
        for e in rows:
            it = e.item
            name = f"labels/{e.split or 'all'}/{posixpath.splitext(_file_name(it))[0]}.txt"
            if name in used:
                name = f"{name[:-4]}-{it.sha256[:8]}.txt"
            used.add(name)
            lines = [
                f"{cid[r.get('class') or e.label]} {(r['x'] + r['w'] / 2) / it.width:.6f} "
                f"{(r['y'] + r['h'] / 2) / it.height:.6f} {r['w'] / it.width:.6f} {r['h'] / it.height:.6f}"
                for r in e.regions
            ]
            zf.writestr(name, "".join(line + "\n" for line in lines))
    return out.getvalue()


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
