"""The Backbones page and API: the catalogue for everyone signed in; adding weights for site admins."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from rest_framework import permissions, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import backbone_store
from .ml.backbones import CATALOGUE, LITE0_PTH_SHA256
from .models import BackboneWeights


def catalogue_rows():
    stored = {w.name: w for w in BackboneWeights.objects.select_related("added_by")}
    rows = []
    for name, b in CATALOGUE.items():
        w = stored.get(name)
        rows.append(
            {
                "name": name,
                "title": b.title,
                "source": b.source,
                "licence": b.licence,
                "url": b.url,
                "hash_algorithm": b.hash_algorithm,
                "hash": b.hash,
                "also": (
                    f"or the checkpoint inside it, sha256 {LITE0_PTH_SHA256}" if name == "efficientnet_lite0" else ""
                ),
                "sha256": (w.source_sha256 if w else b.sha256) or "",
                "stored": w is not None,
                "method": w.method if w else "",
                "added_by": (w.added_by.username if w and w.added_by else ""),
                "added_at": w.added_at if w else None,
                "how_to_add": backbone_store.how_to_add(name),
            }
        )
    return rows


def is_site_admin(user):
    return bool(user.is_authenticated and user.is_superuser)


@login_required
def backbones(request):
    if request.method == "POST":
        if not is_site_admin(request.user):
            raise PermissionDenied("Only a site admin adds backbone weights.")
        name = request.POST.get("name", "")
        try:
            backbone_store.backbone_add_upload(name=name, upload=request.FILES.get("file"), user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{CATALOGUE[name].title}: weights checked and stored.")
            return redirect("backbones")
    return render(
        request, "training/backbones.html", {"rows": catalogue_rows(), "can_add": is_site_admin(request.user)}
    )


class BackboneList(APIView):
    """The backbone catalogue: source, licence, the hash each file is checked against, and whether
    the weights are in the store."""

    permission_classes = [permissions.IsAuthenticated]

    def get(self, request):
        return Response(catalogue_rows())


class BackboneWeightsUpload(APIView):
    """Add a backbone's weights (site admins): multipart ``file``, checked against the catalogue's hash."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser]

    def post(self, request, name):
        if not is_site_admin(request.user):
            return Response({"detail": "Only a site admin adds backbone weights."}, status=status.HTTP_403_FORBIDDEN)
        try:
            row = backbone_store.backbone_add_upload(name=name, upload=request.FILES.get("file"), user=request.user)
        except ValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {"name": row.name, "sha256": row.source_sha256, "method": row.method}, status=status.HTTP_201_CREATED
        )
