import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Blobs moved to core: the kept input's foreign key points at core.Blob (the same table; state only)."""

    dependencies = [
        ("core", "0002_blob"),
        ("serving", "0004_predictionlog_log_key_predictionlogloss"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="predictionlog",
                    name="input_blob",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            related_name="+", to="core.blob"),
                ),
            ],
            database_operations=[],
        ),
    ]
