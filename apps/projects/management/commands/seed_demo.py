"""Seed the demo: a "Screw defect detection" project, one user per role, sample images.

Safe to run again: every step finds what an earlier run made.
"""

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, call_command
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import member_set_roles
from apps.core.stages import STAGES
from apps.projects import services
from apps.projects.models import Project, ProjectPlan, ScopeStatus
from apps.projects.plan import plan_save

DEMO_SLUG = "screw-defect-detection"
DEMO_PASSWORD = "demo-portal-2026"
DEMO_USERS = [
    ("pm", [Role.PM]),
    ("labeler", [Role.LABELER]),
    ("reviewer", [Role.REVIEWER]),
    ("scientist", [Role.DATA_SCIENTIST]),
    ("manager", [Role.MANAGER]),
]
SCOPE = {
    "dataset": "MVTec AD screw: 480 grayscale 1024×1024 photographs, good / defect",
    "dataset_link": "https://www.mvtec.com/company/research/datasets/mvtec-ad",
    "model": "Small convolutional network (Keras), binary classifier",
    "code_language": "Python",
    "goal": "Catch defective screws on the line before packing, so that no defect reaches a customer.",
    "measurement": [
        {"metric": "accuracy", "comparator": ">=", "target": 0.95, "unit": ""},
        {"metric": "p95_latency_ms", "comparator": "<=", "target": 100, "unit": "ms"},
    ],
    "delivery": ["A REST endpoint that answers good/defect with a probability", "A monitoring dashboard"],
    "checklist": {
        k: {"answer": "yes", "note": ""}
        for k in ("ml_suited", "data_available", "labelable", "metric_measurable", "outcome_owner")
    },
}


class Command(BaseCommand):
    help = "Create (or find) the demo project, its users and its sample images."

    def add_arguments(self, parser):
        parser.add_argument("--no-images", action="store_true", help="Skip importing sample images.")
        parser.add_argument("--images", default=None, help="Folder to import (default: settings.DEMO_IMAGES_DIR).")

    def handle(self, *args, **opts):
        User = get_user_model()
        admin, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()
        users = {}
        for username, _ in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            users[username] = user
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if project is None:
            project = services.project_create(
                creator=users["pm"], name="Screw defect detection", creator_roles=[Role.PM], **SCOPE
            )
            project.slug = DEMO_SLUG
            project.save(update_fields=["slug"])
        for username, roles in DEMO_USERS:
            current = set(project.members.filter(user=users[username]).values_list("role", flat=True))
            member_set_roles(project=project, user=users[username], roles=current | set(roles), actor=users["pm"])
        if project.approved_revision() is None:
            # The demo's bar is in force from the start: the PM submits the scope and the manager
            # approves it, so the promotion gate checks accuracy ≥ 0.95 and p95 ≤ 100 ms.
            if project.scope_status == ScopeStatus.DRAFT:
                services.scope_submit(project=project, user=users["pm"])
            services.scope_approve(project=project, user=users["manager"], reason="The line's bar for the demo.")

        if not opts["no_images"]:
            self._import_images(project, users["scientist"], opts["images"])
        if not ProjectPlan.objects.filter(project=project).exists():
            self._plan(project, users)

        self.stdout.write(self.style.SUCCESS(f"Demo project: {project.name} (/p/{project.slug}/)"))
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for username, roles in [("admin", ["site admin"])] + [(u, [Role(r).label for r in rs]) for u, rs in DEMO_USERS]:
            self.stdout.write(f"  {username:<10} {', '.join(str(r) for r in roles)}")

    def _plan(self, project, users):
        """A plan to start from, around today: a week per stage, each with its owner."""
        owners = {"scope": "pm", "data": "scientist", "labeling": "labeler", "profile": "scientist"}
        owners |= {"training": "scientist", "registry": "manager", "serving": "scientist", "monitoring": "manager"}
        start = timezone.localdate() - dt.timedelta(days=14)
        milestones = {}
        for k, (key, _) in enumerate(STAGES):
            begin = start + dt.timedelta(days=7 * k)
            milestones[key] = {
                "planned_start": begin.isoformat(),
                "planned_end": (begin + dt.timedelta(days=6)).isoformat(),
                "owner": owners[key] if owners[key] in users else "",
            }
        plan_save(
            project=project,
            user=users["pm"],
            milestones=milestones,
            estimate={"planned_items": 480, "planned_runs": 10},
        )

    def _import_images(self, project, user, folder):
        from pathlib import Path

        folder = Path(folder or settings.DEMO_IMAGES_DIR)
        if not folder.is_dir():
            self.stdout.write(self.style.WARNING(f"No sample images: {folder} does not exist (set DEMO_IMAGES_DIR)."))
            return
        if project.items.exists():
            self.stdout.write(f"Sample images already imported ({project.items.count()} items).")
            return
        try:
            call_command(
                "import_folder",
                project.slug,
                str(folder),
                "--labels-from-folders",
                "--user",
                user.username,
                stdout=self.stdout,
            )
        except Exception as exc:  # noqa: BLE001 - the portal still starts; the import can be run again by hand
            self.stdout.write(self.style.WARNING(f"Sample import did not run: {exc}"))
