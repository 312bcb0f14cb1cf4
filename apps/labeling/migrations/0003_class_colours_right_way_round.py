"""Label classes that still carry the old default colours get colours that read the right way round:
before, colours went by creation order, so a "defect" class created first was green. Only the old
default colours are touched; a colour someone chose in the schema stays."""
from django.db import migrations

OLD_DEFAULTS = {"#1a7f4b", "#b42318", "#2456c7", "#a86200", "#6b3fa0", "#0f766e", "#9d174d", "#4d7c0f"}


def forwards(apps, schema_editor):
    from apps.core.colors import GREEN, class_palette

    LabelClass = apps.get_model("labeling", "LabelClass")
    projects = LabelClass.objects.values_list("project_id", flat=True).distinct()
    for project_id in projects:
        classes = list(LabelClass.objects.filter(project_id=project_id).order_by("order", "id"))
        palette = class_palette([c.name for c in classes])
        for c in classes:
            wrong = (c.color.lower() == GREEN) != (palette[c.name] == GREEN)
            if c.color.lower() in OLD_DEFAULTS and wrong:
                c.color = palette[c.name]
                c.save(update_fields=["color"])


class Migration(migrations.Migration):
    dependencies = [("labeling", "0002_queue_annotations_review_history")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
