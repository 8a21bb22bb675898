"""What every Bridge page's frame needs (the project switcher, the tabs, whether controls are offered): one
place, read by every view module."""

from sequences.api.auth import OPERATE, PASS_FREEZES
from sequences.models import Project


def page_context(request, project=None, **extra) -> dict:
    return {"projects": Project.objects.order_by("name").values_list("name", flat=True), "project": project,
            "project_name": project.name if project else "", "can_operate": request.user.has_perm(OPERATE),
            "can_pass_freezes": request.user.has_perm(PASS_FREEZES), **extra}
