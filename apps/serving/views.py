"""Serving pages: the models served with their routes and the canary/shadow comparison, "Try it"
(upload an image, see the answer, rendered by the server), recent predictions, and project tokens."""

import time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views import View
from django.views.generic import TemplateView

from apps.core.errors import validation_messages
from apps.projects.permissions import ProjectAccessMixin
from apps.registry.models import ModelVersion

from . import selectors, services
from .auth import ADMIN_ROLES, PREDICT_ROLES
from .engine import ModelUnavailable, get_engine
from .inputs import InputError, RawInput
from .models import RouteMode, TokenScope
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
            predictions=selectors.recent_predictions(self.project, limit=20),
            can_predict=bool(set(PREDICT_ROLES) & self.roles),
            can_manage=bool(set(ADMIN_ROLES) & self.roles),
        )
        return ctx

    def post(self, request, slug):
        started = time.perf_counter()
        rm = selectors.model_by_ref(self.project, request.POST.get("model", ""))
        files = request.FILES.getlist("image")
        answer, errors = None, None
        if not files:
            errors = ["image: choose an image file to send."]
        else:
            raws = [RawInput(i, f.name, f.read()) for i, f in enumerate(files[:8])]
            try:
                answer = predict_images(
                    registered_model=rm,
                    raws=raws,
                    ref=request.POST.get("version") or None,
                    request_id=request_id_for(),
                    started=started,
                )
            except InputError as exc:
                errors = [f"{e.get('file') or e.get('field')}: {e['error']}" for e in exc.errors]
            except ModelUnavailable as exc:
                errors = [str(exc)]
        if answer:  # the log is written off the request path: settle it so "Recent predictions" shows this one
            get_engine().writer.settle()
        ctx = self.get_context_data(answer=answer, try_errors=errors, try_model=rm)
        return self.render_to_response(ctx, status=200 if answer else 400)


class RouteView(ProjectAccessMixin, View):
    read_roles = write_roles = ADMIN_ROLES

    def post(self, request, slug, model):
        rm = selectors.model_by_ref(self.project, model)
        cand = None
        if request.POST.get("candidate"):
            cand = ModelVersion.objects.filter(registered_model=rm, number=request.POST["candidate"]).first()
        share = request.POST.get("canary_share")
        try:
            share = float(share) / 100.0 if share not in (None, "") else None
            services.serving_route_set(
                registered_model=rm,
                user=request.user,
                mode=request.POST.get("mode", ""),
                candidate=cand,
                canary_share=share,
                reason=request.POST.get("reason", ""),
                engine=request.POST.get("engine") or None,
            )
            messages.success(request, f"Routing of {rm.name} saved.")
        except ValueError:
            messages.error(request, "Canary share must be a percentage between 0 and 100.")
        except ValidationError as exc:
            for m in validation_messages(exc):
                messages.error(request, m)
        return redirect("serving-index", slug)


class TokensView(ProjectAccessMixin, TemplateView):
    template_name = "serving/tokens.html"
    read_roles = write_roles = ADMIN_ROLES

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(tokens=selectors.tokens_of(self.project), scopes=TokenScope.choices, new_key=kwargs.get("new_key"))
        return ctx

    def post(self, request, slug):
        if "revoke" in request.POST:
            token = selectors.token_get(self.project, request.POST["revoke"])
            services.project_token_revoke(token=token, user=request.user)
            messages.success(request, f"Token {token.name} revoked.")
            return redirect("serving-tokens", slug)
        rate = request.POST.get("rate_per_minute") or None
        try:
            _, key = services.project_token_create(
                project=self.project,
                user=request.user,
                name=request.POST.get("name", ""),
                scopes=request.POST.getlist("scopes"),
                rate_per_minute=int(rate) if rate else None,
            )
        except ValueError:
            messages.error(request, "Rate per minute must be a whole number.")
            return redirect("serving-tokens", slug)
        except ValidationError as exc:
            for m in validation_messages(exc):
                messages.error(request, m)
            return redirect("serving-tokens", slug)
        # The key is shown in this answer only (never stored, never in a redirect).
        return self.render_to_response(self.get_context_data(new_key=key))
