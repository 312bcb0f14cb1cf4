import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Blobs moved to core: the foreign keys point at core.Blob (the same table; state only)."""

    dependencies = [
        ("core", "0002_blob"),
        ("training", "0005_run_estimate"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="trainingrun",
                    name="base_model",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="core.blob"),
                ),
                migrations.AlterField(
                    model_name="artifact",
                    name="blob",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                            to="core.blob"),
                ),
                migrations.AlterField(
                    model_name="backboneweights",
                    name="blob",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                            to="core.blob"),
                ),
            ],
            database_operations=[],
        ),
    ]
