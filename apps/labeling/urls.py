from django.urls import path

from . import views

P = "p/<slug:slug>/labeling/"
urlpatterns = [
    path(P, views.LabelingOverview.as_view(), name="labeling-overview"),
    path(P + "work/", views.Workspace.as_view(), name="labeling-workspace"),
    path(P + "grid/", views.Grid.as_view(), name="labeling-grid"),
    path(P + "schema/", views.SchemaEdit.as_view(), name="labeling-schema"),
    path(P + "review/", views.Review.as_view(), name="labeling-review"),
    path(P + "review/items/<int:item_id>/resolve/", views.ResolveView.as_view(), name="labeling-review-resolve"),
    path(
        P + "review/annotations/<int:annotation_id>/accept/",
        views.AnnotationReviewView.as_view(accept=True),
        name="labeling-review-accept",
    ),
    path(
        P + "review/annotations/<int:annotation_id>/reject/",
        views.AnnotationReviewView.as_view(accept=False),
        name="labeling-review-reject",
    ),
    path(P + "import/", views.Import.as_view(), name="labeling-import"),
    path(P + "export/", views.Export.as_view(), name="labeling-export"),
    path(P + "export/v<int:number>.<str:fmt>", views.ExportFile.as_view(), name="labeling-export-file"),
    path(P + "export/current.<str:fmt>", views.CurrentExportFile.as_view(), name="labeling-export-current"),
    path(P + "items/<int:item_id>/history/", views.ItemHistory.as_view(), name="labeling-history"),
    path(P + "labelers/<str:username>/", views.LabelerPage.as_view(), name="labeling-labeler"),
]
