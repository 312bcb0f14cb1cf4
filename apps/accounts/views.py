from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render

from . import services
from .models import ApiToken, ProjectMember, Scope


@login_required
def tokens(request):
    new_key = None
    if request.method == "POST":
        if "revoke" in request.POST:
            token = get_object_or_404(ApiToken, pk=request.POST["revoke"], user=request.user)
            services.api_token_revoke(token=token, actor=request.user)
            messages.success(request, f"Token {token.name} revoked.")
            return redirect("tokens")
        try:
            project = services.api_token_project(user=request.user, slug=request.POST.get("project", ""))
            _, new_key = services.api_token_create(
                user=request.user,
                name=request.POST.get("name", ""),
                scopes=request.POST.getlist("scopes"),
                project=project,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    mine = ProjectMember.objects.filter(user=request.user).select_related("project").order_by("project__name")
    projects = list({m.project.slug: m.project for m in mine}.values())
    return render(
        request,
        "accounts/tokens.html",
        {
            "tokens": request.user.api_tokens.select_related("project"),
            "new_key": new_key,
            "scopes": Scope.choices,
            "projects": projects,
            "default_scopes": [str(s.value) for s in services.DEFAULT_SCOPES],
        },
    )
