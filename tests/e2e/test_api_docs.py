import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_swagger_ui_works_offline_and_try_it_out_uses_the_token(page, bosun, shot):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(bosun["url"]) else None)
    page.goto(f"{bosun['url']}/api/docs")
    expect(page.get_by_text("Bosun API")).to_be_visible()
    page.get_by_role("button", name="Authorize").first.click()
    scheme = page.locator(".modal-ux .auth-container", has_text="x-token").first
    scheme.locator("input").fill(bosun["token"])
    scheme.locator("button.authorize").click()
    page.locator(".modal-ux button.btn-done").first.click()
    operation = page.locator(".opblock", has_text="/api/controlPlane/v1/project/{project}").filter(
        has_text="Read a project").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("input[placeholder=project]").fill("sockshop")
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".response .response-col_status").first).to_contain_text("200")
    expect(operation.locator(".responses-wrapper")).to_contain_text('"projectName": "sockshop"')
    shot(page, "swagger-try-it-out")
    assert outside == []
