from django.urls import path

from . import api

P = "projects/<slug:project_slug>/data/"
urlpatterns = [
    path(P + "uploads/", api.UploadCreate.as_view(), name="api-uploads"),
    path(P + "uploads/<uuid:upload_id>/", api.UploadDetail.as_view(), name="api-upload"),
    path(P + "imports/", api.ImportList.as_view(), name="api-imports"),
    path(P + "imports/<int:job_id>/", api.ImportDetail.as_view(), name="api-import"),
    path(P + "items/", api.ItemList.as_view(), name="api-items"),
    path(P + "versions/", api.VersionList.as_view(), name="api-versions"),
    path(P + "versions/diff/", api.VersionDiff.as_view(), name="api-version-diff"),
    path(P + "versions/<int:number>/", api.VersionDetail.as_view(), name="api-version"),
]
