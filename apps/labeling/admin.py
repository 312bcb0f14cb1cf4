from django.contrib import admin

from .models import Annotation, ItemLabel, LabelChange, LabelClass, LabelingSettings, LabelTask, ReviewDecision

admin.site.register([LabelClass, ItemLabel, LabelingSettings, LabelTask, Annotation, LabelChange, ReviewDecision])
