"""apps.core.sql: the plain-SQL helpers of the hot paths give what the ORM gives."""

import pytest

from apps.core import sql
from apps.labeling.models import LabelChange, LabelingSettings
from apps.labeling.services import labeling_settings_for
from tests.factories import ProjectFactory, label_classes, make_item, member, png_bytes

pytestmark = pytest.mark.django_db


def test_objects_gives_the_instances_the_orm_gives_with_values_converted():
    project = ProjectFactory()
    [good, _] = label_classes(project)
    user = member(project, "labeler", username="lab")
    item = make_item(project, png_bytes(size=(8, 8)), name="a.png")
    LabelChange.objects.create(
        item=item,
        user=user,
        scope="final",
        source="labeler",
        old="",
        new="good",
        new_regions=[{"x": 1.5, "y": 2, "w": 3, "h": 4}],
    )
    want = LabelChange.objects.get()
    # the columns in another order than the model's, and one that is not the model's
    [got] = sql.objects(LabelChange, f"SELECT new_regions, 7 AS lucky, t.* FROM {LabelChange._meta.db_table} t")
    for f in LabelChange._meta.concrete_fields:
        assert getattr(got, f.attname) == getattr(want, f.attname), f.name
    assert got.at == want.at and got.at.tzinfo is not None  # a real aware datetime on SQLite too
    assert got.new_regions == [{"x": 1.5, "y": 2, "w": 3, "h": 4}] and got.lucky == 7
    assert got.user == user and not got._state.adding  # a saved instance: relations and save() work
    settings = labeling_settings_for(project)
    [st] = sql.objects(
        LabelingSettings, f"SELECT * FROM {LabelingSettings._meta.db_table} WHERE id = %s", [settings.pk]
    )
    assert st.regions_enabled is False and st.lease_seconds == settings.lease_seconds
    assert sql.objects(LabelingSettings, f"SELECT * FROM {LabelingSettings._meta.db_table} WHERE id = %s", [-1]) == []
