from django.urls import path

from . import views

P = "p/<slug:slug>/data/"
urlpatterns = [
    path(P, views.DataView.as_view(), name="datasets-data"),
    path(P + "upload/", views.UploadView.as_view(), name="datasets-upload"),
    path(P + "imports/<int:job_id>/", views.ImportView.as_view(), name="datasets-import"),
    path(P + "items/<int:item_id>/", views.ItemView.as_view(), name="datasets-item"),
    path(P + "items/<int:item_id>/image", views.ItemImageView.as_view(), name="datasets-item-image"),
    path(P + "items/<int:item_id>/thumb", views.ItemThumbView.as_view(), name="datasets-item-thumb"),
    path(P + "versions/", views.VersionsView.as_view(), name="datasets-versions"),
    path(P + "versions/diff/", views.VersionDiffView.as_view(), name="datasets-version-diff"),
    path(P + "versions/<int:number>/", views.VersionView.as_view(), name="datasets-version"),
]
