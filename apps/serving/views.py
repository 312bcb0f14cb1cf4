"""Serving pages: the models served with their routes and the canary/shadow comparison, "Try it"
(upload an image, see the answer, rendered by the server), recent predictions, and project tokens."""

import time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.generic import TemplateView

from apps.core.forms import FormActionView, PortalForm
from apps.projects.permissions import ProjectAccessMixin
from apps.registry.models import ModelVersion

from . import selectors, services
from .auth import ADMIN_ROLES, PREDICT_ROLES
from .engine import ModelUnavailable, get_engine
from .forms import ProjectTokenForm, RouteForm, TryForm
from .inputs import InputError, RawInput
from .models import RouteMode
from .predict import predict_images, request_id_for


class IndexView(ProjectAccessMixin, TemplateView):
    """GET (any member): the served models, routes, comparisons and recent predictions. POST ("Try
    it", PM / data scientist / manager): predict the uploaded image(s) and show the answer here."""

    template_name = "serving/index.html"
    write_roles = PREDICT_ROLES

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = selectors.servable_models(self.project)
        for row in rows:
            row["comparison"] = selectors.canary_comparison(row["model"])
        ctx.update(
            models=rows,
            modes=RouteMode.choices,
            try_form=kwargs.get("try_form") or TryForm(),
            predictions=selectors.recent_predictions(self.project, limit=20),
            can_predict=bool(set(PREDICT_ROLES) & self.roles),
            can_manage=bool(set(ADMIN_ROLES) & self.roles),
        )
        return ctx

    def post(self, request, slug):
        started = time.perf_counter()
        form = TryForm(request.POST, request.FILES)
        rm, answer = None, None
        if form.is_valid():
            rm = selectors.model_by_ref(self.project, form.cleaned_data["model"])
            raws = [RawInput(i, f.name, f.read()) for i, f in enumerate(form.cleaned_data["image"])]
            try:
                answer = predict_images(
                    registered_model=rm,
                    raws=raws,
                    ref=form.cleaned_data["version"] or None,
                    request_id=request_id_for(),
                    started=started,
                    explain=form.cleaned_data["explain"],
                )
            except InputError as exc:
                for e in exc.errors:
                    field = "version" if e.get("field") == "version" else "image"
                    form.add_error(field, f"{e.get('file') or e.get('field')}: {e['error']}")
            except ModelUnavailable as exc:
                form.add_error(None, str(exc))
        if answer:  # the log is written off the request path: settle it so "Recent predictions" shows this one
            get_engine().writer.settle()
        ctx = self.get_context_data(answer=answer, try_form=form, try_model=rm)
        return self.render_to_response(ctx, status=200 if answer else 400)


class RouteView(FormActionView, IndexView):
    """POST (data scientists, managers): the model's routing; errors beside the fields of its card."""

    http_method_names = ["post"]
    read_roles = write_roles = ADMIN_ROLES
    form_class, form_name = RouteForm, "route_form"

    def post(self, request, slug, model):
        self.model = selectors.model_by_ref(self.project, model)
        return super().post(request, slug, model)

    def form_valid(self, form):
        rm, d = self.model, form.cleaned_data
        cand = None
        if d["candidate"]:
            cand = ModelVersion.objects.filter(registered_model=rm, number=d["candidate"]).first()
            if cand is None:
                raise ValidationError({"candidate": f"{rm.name} has no version {d['candidate']}."})
        services.serving_route_set(
            registered_model=rm,
            user=self.request.user,
            mode=d["mode"],
            candidate=cand,
            canary_share=d["canary_share"] / 100.0 if d["canary_share"] is not None else None,
            reason=d["reason"],
            engine=d["engine"] or None,
        )
        messages.success(self.request, f"Routing of {rm.name} saved.")
        return redirect("serving-index", self.project.slug)

    def form_invalid(self, form):
        form.model_pk = self.model.pk  # the card whose form this is
        return super().form_invalid(form)


class TokensView(ProjectAccessMixin, FormActionView, TemplateView):
    template_name = "serving/tokens.html"
    read_roles = write_roles = ADMIN_ROLES
    form_class, form_name = ProjectTokenForm, "token_form"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(
            tokens=selectors.tokens_of(self.project),
            new_key=kwargs.get("new_key"),
            token_form=ProjectTokenForm(),
            revoke_form=PortalForm(),
        )
        return ctx

    def form_valid(self, form):
        d = form.cleaned_data
        _, key = services.project_token_create(
            project=self.project,
            user=self.request.user,
            name=d["name"],
            scopes=d["scopes"],
            rate_per_minute=d["rate_per_minute"],
        )
        # The key is shown in this answer only (never stored, never in a redirect).
        return self.render_to_response(self.get_context_data(new_key=key))


class TokenRevokeView(TokensView):
    http_method_names = ["post"]
    form_class, form_name = PortalForm, "revoke_form"

    def form_valid(self, form):
        token = selectors.token_get(self.project, self.kwargs["pk"])
        services.project_token_revoke(token=token, user=self.request.user)
        messages.success(self.request, f"Token {token.name} revoked.")
        return redirect("serving-tokens", self.project.slug)
