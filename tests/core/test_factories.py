from apps.core.models import Blob
from tests.factories import label_classes, make_item, make_version, png_bytes, set_label


def test_items_are_stored_once_by_content(project):
    data = png_bytes(seed=7)
    a = make_item(project, data)
    b = make_item(project, data)
    assert a.pk == b.pk and Blob.objects.filter(sha256=a.sha256).count() == 1
    good, defect = label_classes(project)
    set_label(a, defect)
    version = make_version(project, [(a, "train", "defect")])
    assert version.entries.get().label == "defect" and a.current_label.label_class == defect
