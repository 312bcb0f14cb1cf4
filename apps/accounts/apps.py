from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.accounts"

    def ready(self):
        from axes.signals import user_locked_out

        from . import schema  # noqa: F401  (registers the token scheme with the OpenAPI generator)
        from .signals import on_locked_out

        user_locked_out.connect(on_locked_out, dispatch_uid="accounts-locked-out")
