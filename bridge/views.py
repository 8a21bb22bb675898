from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render

from sequences.models import Project, SequenceExecution


@login_required
def home(request):
    projects = Project.objects.annotate(
        running=Count("sequence_executions", filter=Q(sequence_executions__holds_lane=True)),
        waiting=Count("sequence_executions", filter=Q(sequence_executions__state=SequenceExecution.WAITING)),
    )
    return render(request, "bridge/home.html", {"projects": projects})
