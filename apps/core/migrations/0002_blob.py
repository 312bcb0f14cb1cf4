from django.db import migrations, models


class Migration(migrations.Migration):
    """Blobs move from datasets to core (every stage stores its files as blobs). State only: the
    table stays ``datasets_blob`` and no row moves."""

    dependencies = [
        ("core", "0001_initial"),
        ("datasets", "0004_version_split_from"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Blob",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("sha256", models.CharField(max_length=64, unique=True)),
                        ("path", models.CharField(max_length=300)),
                        ("size", models.BigIntegerField()),
                        ("content_type", models.CharField(blank=True, max_length=60)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"db_table": "datasets_blob"},
                ),
            ],
            database_operations=[],
        ),
    ]
