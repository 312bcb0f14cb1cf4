"""Serving over the API: predict (project tokens, personal tokens with the predict scope, or a
signed-in PM / data scientist / manager), the serving state, routes, the comparison, the prediction
log, and the project's tokens."""

import time

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import ApiTokenAuthentication
from apps.registry.models import ModelVersion

from . import contract, selectors, services
from .auth import MANAGE, PREDICT, READ, ProjectTokenAuthentication, ServingAPIMixin, TokenRateThrottle
from .engine import get_engine
from .inputs import ImageBodyParser, OctetStreamParser, raw_inputs_from_request
from .models import PredictionLog, ProjectToken, RouteMode, ServingRoute, TokenScope
from .predict import request_id_for

AUTH = [ProjectTokenAuthentication, ApiTokenAuthentication, SessionAuthentication]


class ServingView(ServingAPIMixin, APIView):
    authentication_classes = AUTH
    throttle_classes = [TokenRateThrottle]


PREDICTION_FIELDS = {
    "index": serializers.IntegerField(),
    "name": serializers.CharField(),
    "sha256": serializers.CharField(),
    "class": serializers.CharField(),
    "confidence": serializers.FloatField(),
    "probabilities": serializers.DictField(child=serializers.FloatField()),
}
PredictOut = inline_serializer(
    "PredictResponse",
    {
        "request_id": serializers.CharField(),
        "model": serializers.CharField(),
        "model_version": serializers.IntegerField(),
        "route": serializers.ChoiceField(["production", "canary", "pinned"]),
        "classes": serializers.ListField(child=serializers.CharField()),
        "latency_ms": serializers.FloatField(),
        "predictions": inline_serializer("Prediction", PREDICTION_FIELDS, many=True),
        "class": serializers.CharField(required=False, help_text="one image only"),
        "confidence": serializers.FloatField(required=False, help_text="one image only"),
        "probabilities": serializers.DictField(
            child=serializers.FloatField(), required=False, help_text="one image only"
        ),
    },
)
PredictJSON = inline_serializer(
    "PredictJSON",
    {
        "images": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text='base64 strings, or objects {"name": …, "data": "<base64>"}',
        ),
        "image": serializers.CharField(required=False, help_text="one base64 image"),
        "version": serializers.CharField(required=False, help_text="a version number, stage or alias"),
    },
)
PredictMultipart = inline_serializer(
    "PredictMultipart",
    {
        "image": serializers.ListField(child=serializers.FileField(), help_text="one or more image files"),
        "version": serializers.CharField(required=False),
    },
)
ErrorOut = inline_serializer(
    "PredictError",
    {
        "detail": serializers.CharField(),
        "errors": serializers.ListField(
            child=serializers.DictField(),
            required=False,
            help_text="one entry per bad file: {file|field, index, error}",
        ),
        "request_id": serializers.CharField(),
    },
)


class Predict(ServingView):
    """Predict the class of one image or a batch. Send one image as the body (``Content-Type:
    image/png`` …), multipart files (any field name) or JSON with base64 images. By default the production version answers (or a canary, when the project routes
    one); ``version`` names a version number, ``staging``, ``production`` or an alias instead. The
    answer's ``request_id`` is also the ``X-Request-ID`` header."""

    permission_classes = PREDICT
    parser_classes = [JSONParser, MultiPartParser, FormParser, ImageBodyParser, OctetStreamParser]

    def initial(self, request, *args, **kwargs):
        self.request_id = request_id_for(request.headers.get("X-Request-ID"))
        super().initial(request, *args, **kwargs)

    def throttled(self, request, wait):
        seconds = int(wait)
        raise contract.Refused(429, contract.throttled_message(seconds), headers=[("Retry-After", str(seconds))])

    def handle_exception(self, exc):
        """Every refusal in the contract's body, with the request id, as the fast path answers."""
        rid = getattr(self, "request_id", None) or request_id_for(self.request.headers.get("X-Request-ID"))
        if isinstance(exc, contract.Refused):
            response = Response(contract.body(rid, exc.detail, exc.errors), status=exc.status)
            for name, value in exc.headers:
                response[name] = value
        else:
            response = super().handle_exception(exc)
            data = response.data
            response.data = contract.body(rid, data.get("detail", "") if isinstance(data, dict) else data)
        response["X-Request-ID"] = rid
        return response

    @extend_schema(
        operation_id="serving_predict",
        parameters=[
            OpenApiParameter("version", str, description="version number, stage or alias (default: production)"),
            OpenApiParameter(
                "explain",
                bool,
                description="also return each image's heatmap (PNG data URI): where the model looked",
            ),
        ],
        request={
            "application/json": PredictJSON,
            "multipart/form-data": PredictMultipart,
            "image/*": {"type": "string", "format": "binary", "description": "one image as the body"},
        },
        responses={
            200: PredictOut,
            400: ErrorOut,
            401: ErrorOut,
            403: ErrorOut,
            404: ErrorOut,
            413: ErrorOut,
            429: ErrorOut,
            503: ErrorOut,
        },
        examples=[OpenApiExample("one base64 PNG", request_only=True, value={"image": "iVBORw0KGgo…"})],
    )
    def post(self, request, project_slug, model):
        started = time.perf_counter()
        contract.size(int(request.META.get("CONTENT_LENGTH") or 0))
        data = request.data if isinstance(request.data, dict) else {}
        ref = request.query_params.get("version") or data.get("version") or None
        status_code, body = contract.answer(
            lambda: selectors.model_by_ref(self.project, model),
            lambda: raw_inputs_from_request(request),
            ref=ref,
            request_id=self.request_id,
            started=started,
            explain=contract.wants_explain(request.query_params.get("explain", data.get("explain"))),
        )
        return Response(body, status=status_code, headers={"X-Request-ID": self.request_id})


class RouteIn(serializers.Serializer):
    mode = serializers.ChoiceField(RouteMode.values)
    candidate = serializers.IntegerField(required=False, allow_null=True, help_text="a staging version's number")
    canary_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    engine = serializers.ChoiceField(
        ["keras", "onnx"],
        required=False,
        help_text="keras (TensorFlow) or onnx (the versions' ONNX exports, ONNX Runtime)",
    )


RouteOut = inline_serializer(
    "ServingRoute",
    {
        "model": serializers.CharField(),
        "production": serializers.IntegerField(allow_null=True),
        "mode": serializers.CharField(),
        "candidate": serializers.IntegerField(allow_null=True),
        "canary_share": serializers.FloatField(),
        "engine": serializers.CharField(),
    },
)


def _route_out(rm):

    route = ServingRoute.objects.filter(registered_model=rm).select_related("candidate").first()
    prod = ModelVersion.objects.filter(registered_model=rm, stage="production").first()
    return {
        "model": rm.name,
        "production": prod.number if prod else None,
        "mode": route.mode if route else RouteMode.OFF,
        "candidate": route.candidate.number if route and route.candidate else None,
        "canary_share": route.canary_share if route else 0.1,
        "engine": route.engine if route else "keras",
    }


class Route(ServingView):
    """How the model's unpinned traffic is routed (members read; data scientists and managers set it):
    ``off``, ``canary`` (``canary_share`` of requests answered by the staging ``candidate``) or
    ``shadow`` (every request also sent to the candidate; answers always from production)."""

    def get_permissions(self):
        return [p() for p in (READ if self.request.method in ("GET", "HEAD", "OPTIONS") else MANAGE)]

    @extend_schema(responses=RouteOut)
    def get(self, request, project_slug, model):
        return Response(_route_out(selectors.model_by_ref(self.project, model)))

    @extend_schema(request=RouteIn, responses=RouteOut)
    def put(self, request, project_slug, model):
        rm = selectors.model_by_ref(self.project, model)
        s = RouteIn(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        cand = None
        if d.get("candidate") is not None:
            cand = ModelVersion.objects.filter(registered_model=rm, number=d["candidate"]).first()
            if cand is None:
                return Response({"candidate": [f"{rm.name} has no version {d['candidate']}."]}, status=400)
        try:
            services.serving_route_set(
                registered_model=rm,
                user=request.user,
                mode=d["mode"],
                candidate=cand,
                canary_share=d.get("canary_share"),
                reason=d.get("reason", ""),
                engine=d.get("engine"),
            )
        except ValidationError as exc:
            return Response(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}, status=400)
        return Response(_route_out(rm))


class Comparison(ServingView):
    """Production beside the canary/shadow candidate over the last ``hours`` (default 24)."""

    permission_classes = READ

    @extend_schema(parameters=[OpenApiParameter("hours", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request, project_slug, model):
        rm = selectors.model_by_ref(self.project, model)
        try:
            hours = max(1, min(24 * 30, int(request.query_params.get("hours", 24))))
        except ValueError:
            return Response({"hours": ["hours must be a whole number."]}, status=400)
        return Response(
            selectors.canary_comparison(rm, hours=hours) or {"detail": "Nothing was routed to a candidate."}
        )


class PredictionLogSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name")
    model_version = serializers.IntegerField(source="model_version.number")
    input_kept = serializers.SerializerMethodField()

    class Meta:
        model = PredictionLog
        fields = [
            "id",
            "created_at",
            "request_id",
            "batch_index",
            "model",
            "model_version",
            "route",
            "latency_ms",
            "input_sha256",
            "input_stats",
            "predicted_class",
            "confidence",
            "probabilities",
            "input_kept",
        ]

    def get_input_kept(self, obj) -> bool:
        return obj.input_blob_id is not None


class Predictions(ServingView):
    """The newest logged predictions (``limit``, at most 500; ``model`` filters by id or name)."""

    permission_classes = READ

    @extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("model", str)],
        responses=PredictionLogSerializer(many=True),
    )
    def get(self, request, project_slug):
        rm = (
            selectors.model_by_ref(self.project, request.query_params["model"])
            if request.query_params.get("model")
            else None
        )
        try:
            limit = max(1, min(500, int(request.query_params.get("limit", 50))))
        except ValueError:
            return Response({"limit": ["limit must be a whole number."]}, status=400)
        rows = selectors.recent_predictions(self.project, limit=limit, registered_model=rm)
        return Response(PredictionLogSerializer(rows, many=True).data)


class ProjectTokenSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    key = serializers.CharField(read_only=True, help_text="Shown once, at creation.")
    scopes = serializers.ListField(child=serializers.ChoiceField(TokenScope.values), required=False)

    class Meta:
        model = ProjectToken
        fields = [
            "id",
            "name",
            "key_prefix",
            "scopes",
            "rate_per_minute",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "key",
        ]
        read_only_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]


class Tokens(ServingView):
    """The project's API tokens (for client applications). Data scientists and managers list and create
    them; the key is in the creation answer only."""

    permission_classes = MANAGE

    @extend_schema(responses=ProjectTokenSerializer(many=True))
    def get(self, request, project_slug):
        return Response(ProjectTokenSerializer(selectors.tokens_of(self.project), many=True).data)

    @extend_schema(request=ProjectTokenSerializer, responses={201: ProjectTokenSerializer})
    def post(self, request, project_slug):
        s = ProjectTokenSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        try:
            token, key = services.project_token_create(project=self.project, user=request.user, **s.validated_data)
        except ValidationError as exc:
            return Response(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}, status=400)
        token.key = key
        return Response(ProjectTokenSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenRevoke(ServingView):
    permission_classes = MANAGE

    @extend_schema(request=None, responses=ProjectTokenSerializer)
    def post(self, request, project_slug, pk):
        token = services.project_token_revoke(token=selectors.token_get(self.project, pk), user=request.user)
        return Response(ProjectTokenSerializer(token).data)


class State(ServingView):
    """What this process serves: per registered model, the production version in memory, the route,
    and the batcher's counters (``manage.py serve`` answers the same at this URL)."""

    permission_classes = READ

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, project_slug):
        engine = get_engine()
        out = []
        for row in selectors.servable_models(self.project):
            rm = row["model"]
            ptr = engine.pointers.get(rm.pk)
            out.append(
                {
                    "model": rm.name,
                    "id": rm.pk,
                    "production": row["production"].number if row["production"] else None,
                    "loaded": ptr.production.number if ptr and ptr.production else None,
                    "calls": ptr.production.batcher.calls if ptr and ptr.production else 0,
                    "images": ptr.production.batcher.images if ptr and ptr.production else 0,
                    "route": _route_out(rm),
                }
            )
        return Response({"models": out, "log": engine.writer.stats()})
