from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render

from . import services
from .models import ApiToken, Scope


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
            _, new_key = services.api_token_create(
                user=request.user, name=request.POST.get("name", ""), scopes=request.POST.getlist("scopes"))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return render(request, "accounts/tokens.html", {
        "tokens": request.user.api_tokens.all(), "new_key": new_key, "scopes": Scope.choices,
    })
