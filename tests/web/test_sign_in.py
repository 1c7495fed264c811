"""Sign-in: the embedded "sign in as" page, the shell in both languages, an expired token."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Stack, axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]


def test_sign_in_as_a_demo_user_on_a_phone(browser: Any, stack: Stack) -> None:
    page = new_page(browser, axe=True)
    page.goto(stack.app)
    assert page.locator("h1").inner_text() == "登录"  # zh-CN by default
    page.locator("button[data-user]").first.wait_for(timeout=120_000)  # from /auth/demo-users
    assert page.locator("button[data-user]").count() >= 10
    assert axe_violations(page) == []
    sign_in(page, stack, "rep-a1")
    assert page.locator("header .who").inner_text() == "rep-a1"
    page.locator("header select").select_option("en")
    page.locator("header button", has_text="Sign out").wait_for()
    screenshot(page, "signed-in-phone")
    page.context.close()


def test_a_refused_token_returns_to_sign_in_saying_so(browser: Any, stack: Stack) -> None:
    page = new_page(browser)
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, stack, "rep-a1")
    # A token the server no longer accepts (expired, revoked, re-keyed): the app signs out,
    # says why, and offers the sign-in again. The token is changed on a page of the same origin
    # without the app (the app's own reads, still loading, would otherwise meet it first).
    page.goto(f"{stack.gateway}/healthz")
    page.evaluate(
        """() => {
            const [head, body] = localStorage.getItem('salesops.token').split('.');
            localStorage.setItem('salesops.token', head + '.' + body + '.bm90LWEtc2lnbmF0dXJl');
        }"""
    )
    page.goto(stack.app)
    alert = page.get_by_role("alert")
    alert.wait_for(timeout=120_000)  # the 401 comes from a stack that may be busy writing demo history
    assert "过期" in alert.inner_text()
    page.locator("button[data-user]").first.wait_for()
    assert page.locator("button[data-user]").count() >= 10
    assert csp_errors == []  # the console runs under its own CSP
    page.context.close()
