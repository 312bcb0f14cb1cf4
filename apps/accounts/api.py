from rest_framework import generics, serializers

from . import services
from .models import ApiToken


class TokenSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once, at creation.")
    scopes = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="read, write, predict; default: read and write"
    )
    project = serializers.CharField(
        source="project.slug",
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="a project's slug: the token works in that project only",
    )

    class Meta:
        model = ApiToken
        fields = ["id", "name", "key_prefix", "scopes", "project", "created_at", "last_used_at", "revoked_at", "key"]
        read_only_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]


class TokenListCreate(generics.ListCreateAPIView):
    """Your API tokens. Create one to call the API with ``Authorization: Bearer <key>``."""

    serializer_class = TokenSerializer
    queryset = ApiToken.objects.none()  # for the schema; get_queryset scopes to the caller

    def get_queryset(self):
        return self.request.user.api_tokens.all()

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        given = data.pop("project", None)  # {"slug": …} through source="project.slug"
        slug = given.get("slug") if isinstance(given, dict) else given
        project = services.api_token_project(user=self.request.user, slug=slug)
        token, key = services.api_token_create(user=self.request.user, project=project, **data)
        token.key = key
        serializer.instance = token
