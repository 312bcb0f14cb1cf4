"""``runserver`` (the web process of ``make run``) with TCP_NODELAY on its connections: see
apps.core.netserver. The command is the next one down INSTALLED_APPS (whitenoise's, which serves
static files), with its server class swapped."""

from importlib import import_module

from django.apps import apps
from django.core.servers.basehttp import WSGIServer

from apps.core.netserver import NoDelayMixin


def _next_runserver():
    below = False
    for config in apps.get_app_configs():
        if config.name == "apps.core.devserver":
            below = True
        elif below:
            try:
                return import_module(f"{config.name}.management.commands.runserver").Command
            except (ImportError, AttributeError):
                continue
    return import_module("django.core.management.commands.runserver").Command


class NoDelayWSGIServer(NoDelayMixin, WSGIServer):
    pass


class Command(_next_runserver()):
    server_cls = NoDelayWSGIServer
