from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.projects"

    def ready(self):
        from apps.core.stages import StageSpan, StageState, register_stage

        def scope_state(project):
            status = project.scope_status
            if status == "approved":
                return StageState("done", f"Approved; {len(project.measurement)} target(s)")
            if status == "submitted":
                return StageState("in_progress", "Submitted, awaiting approval")
            return StageState("in_progress" if project.goal else "not_started", "Draft")

        def scope_span(project):
            """The scope began with the project and was done when a manager first approved it."""
            first = project.scope_revisions.filter(status="approved").order_by("number").first()
            return StageSpan(project.created_at, first.created_at if first else None)

        register_stage("scope", "project-scope", scope_state, scope_span)
