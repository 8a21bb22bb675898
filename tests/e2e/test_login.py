import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_a_person_logs_in_and_sees_the_demo_project(page, bosun, shot):
    page.goto(f"{bosun['url']}/bridge/")
    expect(page.get_by_role("heading", name="Log in to Bosun")).to_be_visible()
    shot(page, "login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    page.get_by_label("Password").fill(bosun["password"])
    page.get_by_role("button", name="Log in").click()
    card = page.locator("#project-card-sockshop")
    expect(card).to_contain_text("Running")
    card.click()
    expect(page.get_by_role("heading", name="sockshop environment")).to_be_visible()
    expect(page.locator("#lane-dev-carts")).to_contain_text("free")
    shot(page, "projects")
