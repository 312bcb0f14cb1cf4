"""The Backbones page and API: the catalogue for everyone signed in; adding weights for site admins."""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.views.generic import TemplateView
from rest_framework import permissions, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.forms import FormActionView, PortalForm

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


class BackboneWeightsForm(PortalForm):
    file = forms.FileField(error_messages={"required": "Choose the weights file to add."})


class BackbonesView(LoginRequiredMixin, TemplateView):
    """The catalogue: every backbone, its source, licence and hashes, and whether its weights are stored."""

    template_name = "training/backbones.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(rows=catalogue_rows(), can_add=is_site_admin(self.request.user), add_form=BackboneWeightsForm())
        return ctx


class BackboneAddView(FormActionView, BackbonesView):
    """A site admin adds one backbone's weights (checked against the catalogue's hash before stored)."""

    http_method_names = ["post"]
    form_class, form_name = BackboneWeightsForm, "add_form"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not is_site_admin(request.user):
            raise PermissionDenied("Only a site admin adds backbone weights.")
        if kwargs["name"] not in CATALOGUE:
            raise Http404(f"No backbone {kwargs['name']!r} in the catalogue.")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        name = self.kwargs["name"]
        backbone_store.backbone_add_upload(name=name, upload=form.cleaned_data["file"], user=self.request.user)
        messages.success(self.request, f"{CATALOGUE[name].title}: weights checked and stored.")
        return redirect("backbones")

    def form_invalid(self, form):
        form.backbone = self.kwargs["name"]  # the row whose form this is
        return super().form_invalid(form)


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
