"""Tokens, permissions, JSON errors, projects and services, the OpenAPI document and Swagger UI."""

import base64
import re

import pytest
from django.test import Client

from sequences.demo import DEMO_SHIPYARD
from tests.conftest import KEPTN_SHIPYARD, Api
from sequences.models import ApiToken, Project, SequenceExecution



def test_a_missing_or_bad_token_gets_401_json(sockshop):
    for headers in ({}, {"HTTP_X_TOKEN": "bsn_wrong"}, {"HTTP_AUTHORIZATION": "Bearer bsn_wrong"}):
        response = Client().get("/api/controlPlane/v1/project", **headers)
        assert response.status_code == 401
        assert response.json()["code"] == 401
        assert "x-token" in response.json()["message"]


def test_a_bearer_token_works_like_x_token(admin_user, sockshop):
    _, token = ApiToken.issue(admin_user, "bearer")
    response = Client().get("/api/controlPlane/v1/project/sockshop", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["projectName"] == "sockshop"


def test_a_revoked_token_is_refused(admin_user, sockshop):
    token, plaintext = ApiToken.issue(admin_user, "old")
    token.revoked_at = token.created_at
    token.save()
    assert Client().get("/api/controlPlane/v1/project", HTTP_X_TOKEN=plaintext).status_code == 401


def test_tokens_are_stored_hashed(admin_user):
    token, plaintext = ApiToken.issue(admin_user, "t")
    assert plaintext not in (token.digest, token.prefix)
    assert not ApiToken.objects.filter(digest=plaintext).exists()


def test_a_viewer_reads_but_may_not_write(viewer_api, sockshop):
    assert viewer_api.get("/api/controlPlane/v1/sequence-execution", project="sockshop").status_code == 200
    response = viewer_api.post("/api/v1/event", {"type": "sh.keptn.event.dev.delivery.triggered",
                                                 "data": {"project": "sockshop", "stage": "dev", "service": "carts"}})
    assert response.status_code == 403
    assert response.json() == {"code": 403, "message": "User 'viewer' may not trigger and control sequences; "
                                                      "ask an admin for the permission."}
    assert viewer_api.delete("/api/controlPlane/v1/project/sockshop").status_code == 403
    assert not SequenceExecution.objects.exists()
    assert Project.objects.filter(name="sockshop").exists()


def test_an_operator_may_not_manage_projects(operator_api, sockshop):
    response = operator_api.post("/api/controlPlane/v1/project", {"name": "other", "shipyard": DEMO_SHIPYARD})
    assert response.status_code == 403


def test_an_admin_creates_a_project_from_yaml_or_keptns_base64(admin_api, db):
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "shop", "shipyard": DEMO_SHIPYARD})
    assert response.status_code == 201
    assert [s["stageName"] for s in response.json()["stages"]] == ["dev", "staging", "production"]
    encoded = base64.b64encode(DEMO_SHIPYARD.encode()).decode()
    assert admin_api.post("/api/controlPlane/v1/project", {"name": "shop2", "shipyard": encoded}).status_code == 201
    assert Project.objects.get(name="shop2").shipyard == DEMO_SHIPYARD


def test_a_duplicate_project_gets_409_and_keeps_the_original(admin_api, sockshop):
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "sockshop", "shipyard": DEMO_SHIPYARD})
    assert response.status_code == 409
    assert Project.objects.get(name="sockshop").shipyard == KEPTN_SHIPYARD


def test_a_bad_shipyard_update_gets_400_with_the_line_and_keeps_the_old_one(admin_api, sockshop):
    response = admin_api.put("/api/controlPlane/v1/project/sockshop", {"shipyard": DEMO_SHIPYARD.replace(
        "name: staging", "name: Staging")})
    assert response.status_code == 400
    assert "line 20: spec.stages[1].name: 'Staging' is not a valid name" in response.json()["message"]
    assert Project.objects.get(name="sockshop").shipyard == KEPTN_SHIPYARD


def test_a_shipyard_update_applies_to_new_sequences_only(admin_api, sockshop):
    context = admin_api.trigger()
    shorter = DEMO_SHIPYARD.replace("            - name: evaluation\n            - name: release\n", "", 1)
    assert admin_api.put("/api/controlPlane/v1/project/sockshop", {"shipyard": shorter}).status_code == 200
    running = SequenceExecution.objects.get(context=context)
    assert [t["name"] for t in running.tasks] == ["deployment", "test", "evaluation", "release"]


@pytest.mark.parametrize("body, fragment", [
    ({"name": "Shop", "shipyard": DEMO_SHIPYARD}, "project name 'Shop' is not valid"),
    ({"name": "shop"}, "shipyard: Field required"),
    ({"name": "shop", "shipyard": ""}, "shipyard is required"),
    ({"name": "shop", "shipyard": "apiVersion: apps/v1\nkind: Shipyard\n"}, "line 1: apiVersion"),
])
def test_bad_project_bodies_get_400_with_a_message(admin_api, db, body, fragment):
    response = admin_api.post("/api/controlPlane/v1/project", body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert not Project.objects.exists()


def test_services_are_created_and_deleted(admin_api, sockshop):
    path = "/api/controlPlane/v1/project/sockshop/service"
    assert admin_api.post(path, {"serviceName": "payment"}).status_code == 201
    assert admin_api.post(path, {"serviceName": "payment"}).status_code == 409
    assert admin_api.post(path, {"serviceName": "Pay Ment"}).status_code == 400
    services = admin_api.get("/api/controlPlane/v1/project/sockshop").json()["stages"][0]["services"]
    assert [s["serviceName"] for s in services] == ["carts", "orders", "payment"]
    assert admin_api.delete(f"{path}/payment").status_code == 200
    assert admin_api.delete(f"{path}/payment").status_code == 404


def test_a_project_is_deleted(admin_api, sockshop):
    assert admin_api.delete("/api/controlPlane/v1/project/sockshop").status_code == 200
    response = admin_api.get("/api/controlPlane/v1/project/sockshop")
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_a_new_project_of_a_deleted_one_s_name_starts_with_no_events(admin_api, api, sockshop):
    from tests.conftest import KEPTN_SHIPYARD

    api.trigger(tag="1")
    assert admin_api.get("/api/v1/event", project="sockshop").json()["totalCount"] > 0
    assert admin_api.delete("/api/controlPlane/v1/project/sockshop").status_code == 200
    assert admin_api.post("/api/controlPlane/v1/project", {"name": "sockshop", "shipyard": KEPTN_SHIPYARD}
                          ).status_code == 201
    assert admin_api.get("/api/v1/event", project="sockshop").json()["totalCount"] == 0


@pytest.mark.parametrize("path, params", [
    ("/api/controlPlane/v1/sequence-execution", {"project": "nope"}),
    ("/api/controlPlane/v1/sequence/nope", {}),
    ("/api/nothing/here", {}),
])
def test_unknown_things_get_404_json(api, sockshop, path, params):
    response = api.get(path, **params)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message"}


@pytest.mark.parametrize("params, fragment", [
    ({"pageSize": 0}, "pageSize must be between 1 and 100"),
    ({"pageSize": "ten"}, "pageSize"),
    ({"status": "running"}, "status must be one of"),
    ({"nextPageKey": "abc"}, "nextPageKey"),
])
def test_bad_query_parameters_get_400(api, sockshop, params, fragment):
    response = api.get("/api/controlPlane/v1/sequence-execution", project="sockshop", **params)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_sequence_executions_page_newest_first(api, sockshop):
    contexts = [api.trigger(service=s) for s in ("carts", "orders")]
    page = api.executions(pageSize=1)
    assert page["totalCount"] == 2 and page["pageSize"] == 1
    assert page["sequenceExecutions"][0]["scope"]["keptnContext"] == contexts[1]
    assert page["nextPageKey"] == 1  # Keptn's SequenceExecutionResult: an integer, as Go clients decode it
    rest = api.executions(pageSize=1, nextPageKey=page["nextPageKey"])
    assert rest["sequenceExecutions"][0]["scope"]["keptnContext"] == contexts[0]
    assert "nextPageKey" not in rest  # the last page: absent, as Keptn omits it


def test_the_openapi_document_lists_the_keptn_paths_and_token_auth(db):
    spec = Client().get("/api/openapi.json").json()
    for path in ("/api/v1/event", "/api/controlPlane/v1/sequence-execution", "/api/controlPlane/v1/sequence/{project}",
                 "/api/controlPlane/v1/event/triggered/{eventType}", "/api/controlPlane/v1/project/{project}"):
        assert path in spec["paths"], path
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("name") == "x-token" and s.get("in") == "header" for s in schemes.values())


def test_swagger_ui_loads_only_local_assets(db):
    page = Client().get("/api/docs").content.decode()
    assert "swagger-ui" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert Client().get(source).status_code == 200, source


def test_a_shipyard_that_is_neither_yaml_nor_base64_gets_400(admin_api, db):
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "shop", "shipyard": "\u00ed"})
    assert response.status_code == 400
    assert "The shipyard is not valid" in response.json()["message"]


def test_a_cached_token_still_obeys_a_revoke_and_a_removed_permission_at_once(operator_user, sockshop):
    from django.contrib.auth.models import Permission

    token, plaintext = ApiToken.issue(operator_user, "cached")
    api = Api(plaintext)
    assert api.get("/api/controlPlane/v1/project").status_code == 200  # its lookup is now kept a while
    operator_user.user_permissions.remove(Permission.objects.get(codename="operate_sequences"))
    assert api.post("/api/v1/event", {"type": "sh.keptn.event.dev.delivery.triggered", "data": {
        "project": "sockshop", "stage": "dev", "service": "carts"}}).status_code == 403
    token.revoked_at = token.created_at
    token.save()
    assert api.get("/api/controlPlane/v1/project").status_code == 401
