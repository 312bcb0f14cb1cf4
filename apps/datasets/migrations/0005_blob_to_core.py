import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Blobs moved to core: the items' foreign keys point at core.Blob, and datasets forgets its Blob
    (state only: core.Blob keeps the table ``datasets_blob``)."""

    dependencies = [
        ("datasets", "0004_version_split_from"),
        ("core", "0002_blob"),
        ("training", "0006_blob_in_core"),
        ("serving", "0005_blob_in_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="item",
                    name="blob",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="items",
                                            to="core.blob"),
                ),
                migrations.AlterField(
                    model_name="item",
                    name="thumbnail",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="core.blob"),
                ),
                migrations.DeleteModel(name="Blob"),
            ],
            database_operations=[],
        ),
    ]
