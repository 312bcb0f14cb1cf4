"""The ingest job: accepted, duplicate and every kind of bad input, each with its reason."""

import zlib

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from apps.core.models import Blob
from apps.datasets.models import ImportFile, Item
from apps.datasets.services import import_folder_start, import_job_run
from apps.labeling.models import ItemLabel
from tests.factories import png_bytes

from .conftest import gif_bytes, make_zip, upload


def results(job):
    return {f.name: (f.result, f.reason) for f in ImportFile.objects.filter(job=job, kind="image")}


def assert_only_good_stored(job, project, good_names=("good.png",)):
    """The good file became an item; nothing of the rejected ones is stored anywhere."""
    r = results(job)
    for name in good_names:
        assert r[name][0] == "accepted", r
    assert job.status == "done"
    assert Item.objects.filter(project=project).count() == len(good_names)
    # original + thumbnail per accepted item, nothing else
    assert Blob.objects.count() == 2 * len(good_names)
    assert job.accepted == len(good_names) and job.processed == job.total


def reason_of(job, name):
    result, reason = results(job)[name]
    assert result == "rejected", (name, result)
    return reason


def test_accepted_image_is_stored_once_with_thumbnail_and_metadata(project, people, ingest, good_png):
    job = ingest(project, people["ds"], [upload("good.png", good_png)])
    item = Item.objects.get(project=project)
    assert (item.width, item.height, item.mode, item.format, item.bytes) == (48, 40, "RGB", "PNG", len(good_png))
    assert default_storage.exists(item.blob.path) and item.thumbnail is not None
    with default_storage.open(item.thumbnail.path) as fh, Image.open(fh) as thumb:
        assert max(thumb.size) <= 256
    assert job.accepted == 1 and job.status == "done" and item.import_job_id == job.pk
    # staging is cleaned up once the job is done
    assert not default_storage.exists(ImportFile.objects.get(job=job).staged_path)


def test_duplicates_within_an_upload_and_against_the_dataset(project, people, ingest, good_png):
    ingest(project, people["ds"], [upload("first.png", good_png)])
    job = ingest(
        project,
        people["ds"],
        [upload("again.png", good_png), upload("copy.png", good_png), upload("other.png", png_bytes(seed=9))],
    )
    r = results(job)
    assert r["again.png"][0] == "duplicate" and "already in the dataset" in r["again.png"][1]
    assert r["copy.png"][0] == "duplicate" and r["other.png"][0] == "accepted"
    assert (job.accepted, job.duplicates, job.rejected) == (1, 2, 0)
    assert Item.objects.filter(project=project).count() == 2


@pytest.mark.parametrize(
    "name,data,words",
    [
        ("notes.png", b"this is a text file pretending to be a PNG\n" * 10, "Not an image"),
        ("empty.png", b"", "empty"),
        ("anim.gif", None, "Format GIF is not accepted"),
    ],
)
def test_bad_single_files_are_rejected_and_the_rest_ingested(project, people, ingest, good_png, name, data, words):
    data = gif_bytes() if data is None else data
    job = ingest(project, people["ds"], [upload(name, data), upload("good.png", good_png)])
    assert words in reason_of(job, name)
    assert_only_good_stored(job, project)


def test_truncated_image(project, people, ingest, good_png):
    whole = png_bytes(size=(300, 300), mode="RGB", seed=4)
    job = ingest(project, people["ds"], [upload("cut.png", whole[: len(whole) // 2]), upload("good.png", good_png)])
    assert "truncated or corrupt" in reason_of(job, "cut.png")
    assert_only_good_stored(job, project)


def _bomb_png(w, h):
    """A tiny PNG that claims w×h pixels (all zero, so it compresses to almost nothing)."""
    import struct

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = zlib.compress(b"\x00" * ((w // 8 + 1) * 64), 9)  # far too little data: never decoded anyway
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding(project, people, ingest, good_png):
    job = ingest(project, people["ds"], [upload("bomb.png", _bomb_png(60000, 60000)), upload("good.png", good_png)])
    reason = reason_of(job, "bomb.png")
    assert "pixels" in reason and "decompression bomb" in reason
    assert_only_good_stored(job, project)


def test_pixel_limit_comes_from_settings(project, people, ingest, good_png, settings):
    settings.DATASET_MAX_PIXELS = 48 * 40
    job = ingest(project, people["ds"], [upload("big.png", png_bytes(size=(100, 100))), upload("good.png", good_png)])
    assert "the limit is 1,920" in reason_of(job, "big.png")
    assert_only_good_stored(job, project)


def test_file_over_size_limit(project, people, ingest, good_png, settings):
    settings.DATASET_MAX_FILE_BYTES = len(good_png) + 10
    big = png_bytes(size=(200, 200), mode="RGB", seed=5)
    job = ingest(project, people["ds"], [upload("huge.png", big), upload("good.png", good_png)])
    assert "the limit is" in reason_of(job, "huge.png") and "per image" in reason_of(job, "huge.png")
    assert_only_good_stored(job, project)


def test_zip_is_unpacked_with_labels_from_folders(project, people, ingest):
    data = make_zip(
        [
            ("set/good/a.png", png_bytes(seed=1)),
            ("set/defect/b.png", png_bytes(seed=2)),
            ("__MACOSX/set/._a.png", b"junk"),
            ("set/readme.txt", b"hello"),
        ]
    )
    job = ingest(project, people["ds"], [upload("batch.zip", data)], labels_from_folders=True)
    r = results(job)
    assert r["set/good/a.png"][0] == "accepted" and r["set/defect/b.png"][0] == "accepted"
    # Not an image: skipped quietly and counted, as a folder import does, not one "rejected" row each.
    assert "set/readme.txt" not in r and "__MACOSX/set/._a.png" not in r
    assert (job.skipped, job.rejected) == (1, 0)
    labels = dict(ItemLabel.objects.values_list("item__original_name", "label_class__name"))
    assert labels == {"set/good/a.png": "good", "set/defect/b.png": "defect"}
    assert ItemLabel.objects.filter(source="import").count() == 2
    archive = ImportFile.objects.get(job=job, kind="archive")
    assert (
        archive.result == "accepted" and archive.reason == "Unpacked: 2 image(s); 1 other file(s) skipped (not images)."
    )
    # Each entry names the archive it came from.
    assert set(ImportFile.objects.filter(job=job, kind="image").values_list("archive_name", flat=True)) == {"batch.zip"}


def test_many_non_images_in_a_zip_are_counted_not_rejected(project, people, ingest, api):
    entries = [(f"data/good/{i}.png", png_bytes(seed=i)) for i in range(3)]
    entries += [(f"data/meta/{i}.json", b"{}") for i in range(40)] + [("data/labels.csv", b"a,b")]
    job = ingest(
        project,
        people["ds"],
        [
            upload("first.zip", make_zip(entries)),
            upload("second.zip", make_zip([("x/good/z.png", png_bytes(seed=99))])),
        ],
    )
    assert (job.accepted, job.rejected, job.skipped) == (4, 0, 41)
    r = api(people["ds"]).get(f"/api/v1/projects/{project.slug}/data/imports/{job.pk}/").json()
    assert r["skipped"] == 41 and r["rejected"] == 0
    assert {f["name"]: f["archive_name"] for f in r["files"]} == {
        "data/good/0.png": "first.zip",
        "data/good/1.png": "first.zip",
        "data/good/2.png": "first.zip",
        "x/good/z.png": "second.zip",
    }


def test_folder_import_counts_what_it_skips(project, people, tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "a.png").write_bytes(png_bytes(seed=3))
    (tmp_path / "README.md").write_text("screws")
    (tmp_path / "good" / "notes.txt").write_text("x")
    job = import_folder_start(
        project=project, user=people["ds"], folder=tmp_path, labels_from_folders=True, dispatch_job=False
    )
    assert job.skipped == 2 and job.total == 1


@pytest.mark.parametrize(
    "entry,opts,words",
    [
        ("../escape.png", {}, "escapes its folder"),
        ("a/../../escape.png", {}, "escapes its folder"),
        ("/etc/abs.png", {}, "Absolute path"),
        ("link.png", {"symlink": True}, "Symbolic links"),
        ("inner.zip", {"nested": True}, "Archives inside archives"),
    ],
)
def test_dangerous_zip_entries_are_refused(project, people, ingest, entry, opts, words):
    payload = (
        make_zip([("x.png", png_bytes(seed=3))])
        if opts.get("nested")
        else (b"/etc/passwd" if opts.get("symlink") else png_bytes(seed=3))
    )
    data = make_zip([(entry, payload, opts), ("good.png", png_bytes(seed=8))])
    job = ingest(project, people["ds"], [upload("up.zip", data)])
    rejected = ImportFile.objects.get(job=job, result="rejected")
    assert words in rejected.reason
    assert results(job)["good.png"][0] == "accepted"
    assert Item.objects.filter(project=project).count() == 1 and Blob.objects.count() == 2
    assert not default_storage.exists("escape.png")


def test_nested_archive_disguised_as_image(project, people, ingest):
    inner = make_zip([("x.png", png_bytes(seed=3))])
    data = make_zip([("looks.png", inner), ("good.png", png_bytes(seed=8))])
    job = ingest(project, people["ds"], [upload("up.zip", data)])
    assert "archive" in reason_of(job, "looks.png")
    assert results(job)["good.png"][0] == "accepted"


def test_zip_bomb_entry_is_refused_by_ratio(project, people, ingest, good_png):
    data = make_zip([("zeros.png", b"\x00" * (20 * 1024 * 1024)), ("good.png", good_png)])
    assert len(data) < 200_000
    job = ingest(project, people["ds"], [upload("bomb.zip", data)])
    assert "zip bomb" in reason_of(job, "zeros.png")
    assert_only_good_stored(job, project)


def test_zip_bomb_archive_is_refused_by_total_size(project, people, ingest, good_png, settings):
    settings.DATASET_ZIP_MAX_UNCOMPRESSED_BYTES = 5 * 1024 * 1024
    data = make_zip([(f"z{i}.png", b"\x00" * (2 * 1024 * 1024)) for i in range(4)])
    job = ingest(project, people["ds"], [upload("bomb.zip", data), upload("good.png", good_png)])
    archive = ImportFile.objects.get(job=job, kind="archive")
    assert archive.result == "rejected" and "zip bomb" in archive.reason
    assert ImportFile.objects.filter(job=job, kind="image").count() == 1
    assert_only_good_stored(job, project)


def test_corrupt_zip(project, people, ingest, good_png):
    whole = make_zip([("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2))])
    job = ingest(project, people["ds"], [upload("broken.zip", whole[: len(whole) // 3]), upload("good.png", good_png)])
    archive = ImportFile.objects.get(job=job, kind="archive")
    assert archive.result == "rejected" and "Not a readable zip archive" in archive.reason
    assert_only_good_stored(job, project)


def test_corrupt_zip_entry_crc(project, people, ingest):
    good = png_bytes(seed=8)
    data = bytearray(make_zip([("a.png", png_bytes(seed=1)), ("good.png", good)]))
    # flip a byte inside the first entry's compressed data: the header stays readable, the CRC fails
    data[60] ^= 0xFF
    job = ingest(project, people["ds"], [upload("crc.zip", bytes(data))])
    r = results(job)
    assert r["a.png"][0] == "rejected" and r["good.png"][0] == "accepted"


def test_folder_import_takes_the_parent_folder_as_label(project, people, tmp_path):
    for rel, seed in [("train/good/1.png", 1), ("test/good/2.png", 2), ("test/defect/3.png", 3)]:
        (tmp_path / "ds" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / rel).write_bytes(png_bytes(seed=seed))
    (tmp_path / "ds" / "README.md").write_text("not an image, not an upload either")
    (tmp_path / "ds" / "test" / "link.png").symlink_to(tmp_path / "ds" / "test" / "good" / "2.png")
    job = import_folder_start(
        project=project, user=people["ds"], folder=tmp_path / "ds", labels_from_folders=True, dispatch_job=False
    )
    job = import_job_run(job_id=job.pk, inline=True)
    assert (job.status, job.accepted, job.rejected) == ("done", 3, 1)
    labels = dict(ItemLabel.objects.values_list("item__original_name", "label_class__name"))
    assert labels == {"train/good/1.png": "good", "test/good/2.png": "good", "test/defect/3.png": "defect"}
    assert "Symbolic links" in ImportFile.objects.get(job=job, name="test/link.png").reason


def test_a_second_run_of_a_finished_chunk_changes_nothing(project, people, ingest, good_png):
    from apps.datasets.services import import_chunk_run

    job = ingest(project, people["ds"], [upload("good.png", good_png)])
    f = ImportFile.objects.get(job=job)
    ImportFile.objects.filter(pk=f.pk).update(result="pending")  # as if the worker died before recording
    from django.core.files.base import ContentFile

    default_storage.save(f.staged_path, ContentFile(good_png))
    job.__class__.objects.filter(pk=job.pk).update(status="running", processed=0, accepted=0)
    import_chunk_run(job_id=job.pk, first_id=f.pk, last_id=f.pk)
    job.refresh_from_db()
    assert Item.objects.count() == 1 and job.status == "done" and job.duplicates == 1


def test_import_folder_command(project, people, tmp_path, capsys):
    from django.core.management import call_command

    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "a.png").write_bytes(png_bytes(seed=1))
    (tmp_path / "bad.png").write_bytes(b"nope")
    call_command("import_folder", project.slug, str(tmp_path), "--labels-from-folders", "--user", "ds", "--wait")
    out = capsys.readouterr().out
    assert "done: 1 accepted, 0 duplicate, 1 rejected" in out and "Not an image" in out
    assert Item.objects.get().uploaded_by == people["ds"]


def test_stale_running_import_is_failed_by_the_reaper(project):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core.reaper import reap_stuck_jobs
    from apps.datasets.models import ImportJob

    old = timezone.now() - timedelta(hours=1)
    stale = ImportJob.objects.create(project=project, status="running", started_at=old, heartbeat_at=old)
    fresh = ImportJob.objects.create(project=project, status="running", started_at=old, heartbeat_at=timezone.now())
    assert reap_stuck_jobs() >= 1
    stale.refresh_from_db(), fresh.refresh_from_db()
    assert stale.status == "failed" and "heartbeat" in stale.error and fresh.status == "running"


def test_oversize_refusal_states_the_real_size_in_one_unit_convention(project, people, ingest, good_png, settings):
    from apps.core.images import human_bytes

    limit = settings.DATASET_MAX_FILE_BYTES = len(good_png) + 10
    big = png_bytes(size=(200, 200), mode="RGB", seed=5)
    job = ingest(project, people["ds"], [upload("huge.png", big), upload("good.png", good_png)])
    # The real size, not the limit + 1 bytes the reader stopped at; decimal units and exact bytes.
    assert reason_of(job, "huge.png") == (
        f"The file is {human_bytes(len(big))} ({len(big):,} bytes); the limit is "
        f"{human_bytes(limit)} ({limit:,} bytes) per image."
    )
    assert_only_good_stored(job, project)
    assert [human_bytes(n) for n in (0, 999, 60_000_000, 50_000_000, 2_500_000_000)] == [
        "0 bytes",
        "999 bytes",
        "60.0 MB",
        "50.0 MB",
        "2.5 GB",
    ]


@pytest.mark.parametrize(
    "size,words",
    [
        ((20_001, 2), "each side may be at most 20,000 pixels"),
        ((2_000, 50), "2,000×50 pixels, 40:1; the longer side may be at most 20 times"),
    ],
)
def test_sides_and_aspect_ratio_are_limited(project, people, ingest, good_png, size, words):
    strip = png_bytes(size=size, value=128)
    job = ingest(project, people["ds"], [upload("strip.png", strip), upload("good.png", good_png)])
    assert words in reason_of(job, "strip.png")
    assert_only_good_stored(job, project)


def test_the_decompression_bomb_message_quotes_one_limit(project, people, ingest, good_png, settings):
    settings.DATASET_MAX_PIXELS = 50_000_000
    header = _bomb_png(12_000, 12_000)  # 144 M pixels: above Pillow's own guard too
    job = ingest(project, people["ds"], [upload("bomb.png", header), upload("good.png", good_png)])
    reason = reason_of(job, "bomb.png")
    assert reason == (
        "The image is 12,000×12,000 = 144,000,000 pixels; the limit is 50,000,000 pixels (decompression bomb guard)."
    )
    assert "89478485" not in reason and "Image size" not in reason
    assert_only_good_stored(job, project)
