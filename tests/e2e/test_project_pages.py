"""A project made and changed in the Bridge, in a real browser at laptop and phone width."""

import uuid

import pytest
from playwright.sync_api import expect

from tests.test_typos import TYPO

pytestmark = pytest.mark.e2e


def fits(page, width):
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{page.url} is {wide}px wide at {width}px"


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_project_is_created_fixed_and_changed_from_the_bridge(logged_in, bosun, shot, width, height):
    page = logged_in
    page.set_viewport_size({"width": width, "height": height})
    name = f"web-{uuid.uuid4().hex[:6]}"
    page.goto(f"{bosun['url']}/bridge/")
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("textbox", name="Shipyard").fill(TYPO.replace("tasks: [{name: deployment}]", "tasks: [{name: deployment}"))
    page.get_by_label("Services").fill("carts")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was created")
    expect(page.locator("#shipyard-error")).to_contain_text("The shipyard is not valid")
    expect(page.get_by_label("Name")).to_have_value(name)  # what was typed stays
    fits(page, width)
    shot(page, f"project-new-error-{width}")
    page.get_by_role("textbox", name="Shipyard").fill(TYPO)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    expect(page.get_by_role("status")).to_contain_text(f"Project '{name}' is created.")
    expect(page.get_by_role("note")).to_contain_text("line 7: spec.stages[0].sequence: Bosun does not know this key")
    page.get_by_label("Add a service").fill("orders")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".service-list")).to_contain_text("orders")
    page.locator(".service-list li", has_text="carts").get_by_role("button", name="Remove…").click()
    page.get_by_role("button", name="Remove carts").click()
    expect(page.get_by_role("status")).to_contain_text("Service 'carts' is removed.")
    expect(page.locator(".service-name")).to_have_text(["orders"])
    page.get_by_role("textbox", name="Shipyard").fill(TYPO.replace("      sequence:", "      sequences:"))
    page.get_by_role("button", name="Save the shipyard").click()
    expect(page.get_by_role("status")).to_contain_text("The shipyard is saved")
    expect(page.get_by_role("note")).not_to_contain_text("line 7")
    page.get_by_role("textbox", name="Job definitions").fill("jobs:\n  - task: deployment\n    command: 42\n")
    page.get_by_role("button", name="Save the job definitions").click()
    expect(page.locator("#jobs-error")).to_contain_text("The job definitions are not valid")
    fits(page, width)
    shot(page, f"project-settings-{width}")
    page.get_by_role("link", name="Environment").click()
    expect(page.locator(".env-service")).to_have_text(["orders"])
