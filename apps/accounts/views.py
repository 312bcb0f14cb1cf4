from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from apps.core.forms import FormActionView, PortalForm

from . import services
from .forms import ApiTokenForm
from .models import ApiToken, ProjectMember, Scope


class TokensView(LoginRequiredMixin, FormActionView, TemplateView):
    """The user's personal API tokens: create one (its key shown once), see and revoke them."""

    template_name = "accounts/tokens.html"
    form_class, form_name = ApiTokenForm, "token_form"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user = self.request.user
        mine = ProjectMember.objects.filter(user=user).select_related("project").order_by("project__name")
        ctx.update(
            tokens=user.api_tokens.select_related("project"),
            new_key=kwargs.get("new_key"),
            scopes=Scope.choices,
            projects=list({m.project.slug: m.project for m in mine}.values()),
            default_scopes=[str(s.value) for s in services.DEFAULT_SCOPES],
            token_form=ApiTokenForm(),
            revoke_form=PortalForm(),
        )
        return ctx

    def form_valid(self, form):
        d = form.cleaned_data
        project = services.api_token_project(user=self.request.user, slug=d["project"])
        _, key = services.api_token_create(user=self.request.user, name=d["name"], scopes=d["scopes"], project=project)
        return self.render_to_response(self.get_context_data(new_key=key))  # shown in this answer only


class TokenRevokeView(TokensView):
    http_method_names = ["post"]
    form_class, form_name = PortalForm, "revoke_form"

    def form_valid(self, form):
        token = get_object_or_404(ApiToken, pk=self.kwargs["pk"], user=self.request.user)
        services.api_token_revoke(token=token, actor=self.request.user)
        messages.success(self.request, f"Token {token.name} revoked.")
        return redirect("tokens")
