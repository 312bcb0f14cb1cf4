from django.apps import AppConfig


class DevServerConfig(AppConfig):
    """Only a ``runserver`` that sets TCP_NODELAY (listed first in INSTALLED_APPS so its command
    wins; it wraps whitenoise's, which wraps Django's)."""

    name = "apps.core.devserver"
    label = "core_devserver"
