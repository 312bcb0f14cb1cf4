from django.urls import path

from . import api

P = "projects/<slug:project_slug>/labeling/"
urlpatterns = [
    path(P + "schema/", api.Schema.as_view(), name="api-labeling-schema"),
    path(P + "queue/next/", api.QueueNext.as_view(), name="api-labeling-next"),
    path(P + "items/<int:item_id>/", api.ItemDetail.as_view(), name="api-labeling-item"),
    path(P + "items/<int:item_id>/label/", api.ItemLabelSubmit.as_view(), name="api-labeling-label"),
    path(P + "items/<int:item_id>/skip/", api.ItemSkip.as_view(), name="api-labeling-skip"),
    path(P + "items/<int:item_id>/undo/", api.ItemUndo.as_view(), name="api-labeling-undo"),
    path(P + "items/<int:item_id>/resolve/", api.ReviewResolve.as_view(), name="api-labeling-resolve"),
    path(P + "bulk/", api.BulkLabel.as_view(), name="api-labeling-bulk"),
    path(P + "progress/", api.Progress.as_view(), name="api-labeling-progress"),
    path(P + "agreement/", api.Agreement.as_view(), name="api-labeling-agreement"),
    path(P + "review/", api.ReviewQueue.as_view(), name="api-labeling-review"),
    path(
        P + "annotations/<int:annotation_id>/accept/",
        api.AnnotationReview.as_view(accept=True),
        name="api-labeling-accept",
    ),
    path(
        P + "annotations/<int:annotation_id>/reject/",
        api.AnnotationReview.as_view(accept=False),
        name="api-labeling-reject",
    ),
    path(P + "import/", api.LabelImport.as_view(), name="api-labeling-import"),
    path(P + "versions/<int:number>/export.<str:fmt>", api.VersionExport.as_view(), name="api-labeling-export"),
    path(P + "export/current.<str:fmt>", api.CurrentExport.as_view(), name="api-labeling-export-current"),
]
