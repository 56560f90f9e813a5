"""WCAG 2.1 AA contrast of the Console's colours, computed from static/console/console.css itself.

The stylesheet's custom properties are resolved and every text/background pair it can produce is checked at 4.5:1
(normal-size text). The browser tests (test_it_contrast_browser.py) check the colours as the pages really render.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

AA_NORMAL = 4.5
CSS = Path(settings.BASE_DIR) / "static" / "console" / "console.css"
TEMPLATES = Path(settings.BASE_DIR) / "templates"
NAMED = {"white": "#ffffff", "black": "#000000", "#fff": "#ffffff", "#000": "#000000"}
# Rules that paint no text: a background alone is fine.
NO_TEXT = {".progress", ".progress > span"}
# Selectors that only match inside the top bar, whose background is the .topbar rule's.
IN_TOPBAR = re.compile(r"(^|\s)(\.topbar|\.brand|\.who)\b")


def relative_luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def parse_css(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(custom properties, {selector: {"color": hex, "background": hex}}) with var() resolved."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    variables: dict[str, str] = {}
    rules: dict[str, dict[str, str]] = {}
    blocks = re.findall(r"([^{}]+)\{([^{}]*)\}", text)
    for selector, body in blocks:
        if selector.strip() == ":root":
            variables.update({name: value.strip() for name, value in re.findall(r"(--[\w-]+)\s*:\s*([^;]+)", body)})

    def colour(value: str) -> str | None:
        for token in re.findall(r"var\(--[\w-]+\)|#[0-9a-fA-F]{3,6}\b|\bwhite\b|\bblack\b", value):
            if token.startswith("var("):
                token = variables[token[4:-1]]
            token = NAMED.get(token.lower(), token.lower())
            if re.fullmatch(r"#[0-9a-f]{3}|#[0-9a-f]{6}", token):
                return token
        return None

    for selectors, body in blocks:
        declarations = dict((name.strip(), value) for name, value in re.findall(r"([\w-]+)\s*:\s*([^;]+)", body))
        found = {}
        if "color" in declarations and colour(declarations["color"]):
            found["color"] = colour(declarations["color"])
        for name in ("background", "background-color"):
            if name in declarations and colour(declarations[name]):
                found["background"] = colour(declarations[name])
        if not found:
            continue
        for selector in selectors.split(","):
            selector = " ".join(selector.split())
            if selector != ":root":
                rules.setdefault(selector, {}).update(found)
    return variables, rules


def base_selector(selector: str) -> str | None:
    """``.badge.ok`` -> ``.badge``, ``button[disabled]`` -> ``button``, ``button.danger`` -> ``button``."""
    stripped = re.sub(r"(\[[^\]]*\]|\.[\w-]+|:[\w-]+)$", "", selector)
    return stripped if stripped and stripped != selector and not stripped.endswith((" ", ">")) else None


def colour_pairs(text: str) -> list[tuple[str, str, str, str]]:
    """Every (description, foreground, background) the stylesheet can put together, and the rules to check."""
    _, rules = parse_css(text)
    body = rules["body"]
    topbar = rules[".topbar"]["background"]
    light_backgrounds = {
        selector: rule["background"]
        for selector, rule in rules.items()
        if "background" in rule and "color" in rule and not IN_TOPBAR.search(selector) and relative_luminance(rule["background"]) > 0.5
    }
    light_backgrounds["body"] = body["background"]
    pairs = []
    for selector, rule in rules.items():
        if selector in NO_TEXT:
            continue
        if "color" in rule and "background" in rule:
            pairs.append((selector, selector, rule["color"], rule["background"]))
        elif "background" in rule:
            base = base_selector(selector)
            base_colour = rules.get(base, {}).get("color") if base else None
            # A background with no text colour of its own inherits whatever it sits in (a diff line in a dark pre).
            assert base_colour, f"{selector} paints a background but sets no text colour (nor does a base rule)"
            pairs.append((selector, f"{base} on {selector}", base_colour, rule["background"]))
        elif IN_TOPBAR.search(selector):
            pairs.append((selector, f"{selector} on .topbar", rule["color"], topbar))
        else:
            for where, background in light_backgrounds.items():
                pairs.append((selector, f"{selector} on {where}", rule["color"], background))
    return pairs


def test_every_text_colour_pair_in_the_stylesheet_meets_aa():
    pairs = colour_pairs(CSS.read_text())
    assert len(pairs) > 40  # the parser really found the rules
    failing = [f"{what}: {fg} on {bg} = {contrast(fg, bg):.2f}:1" for _, what, fg, bg in pairs if contrast(fg, bg) < AA_NORMAL]
    assert failing == []


def test_the_checker_catches_the_unreadable_policy_diff():
    """The Router diff as it was: light pre text inherited by a diff line on a light tint (1.10:1)."""
    old = ":root { --fg:#1d2330; } body { background:#f5f6f8; color:var(--fg); } .topbar { background:#111827; color:#fff; }\n"
    old += "pre { background:#0f172a; color:#e2e8f0; } .diff-new { background:#e6f6ec; }"
    with pytest.raises(AssertionError, match=r"\.diff-new paints a background but sets no text colour"):
        colour_pairs(old)
    assert round(contrast("#e2e8f0", "#e6f6ec"), 2) == 1.10


def test_inline_button_colours_in_templates_meet_aa():
    _, rules = parse_css(CSS.read_text())
    on_button = rules["button, .button"]["color"] if "button, .button" in rules else rules["button"]["color"]
    found = []
    for path in TEMPLATES.rglob("*.html"):
        for match in re.finditer(r'<(?:button|a)[^>]*style="[^"]*background:\s*(#[0-9a-fA-F]{3,6})', path.read_text()):
            found.append((path.name, match.group(1)))
    failing = [
        f"{name}: {on_button} on {bg} = {contrast(on_button, bg):.2f}:1" for name, bg in found if contrast(on_button, bg) < AA_NORMAL
    ]
    assert found and failing == []


def test_the_policy_diff_is_compact_and_scrolls():
    _, rules = parse_css(CSS.read_text())
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    block = re.search(r"pre\.diff\s*\{([^}]*)\}", text)
    assert block, "no pre.diff rule"
    assert (
        re.search(r"max-height:\s*(\d+(\.\d+)?)rem", block.group(1))
        and float(re.search(r"max-height:\s*([\d.]+)rem", block.group(1)).group(1)) <= 30
    )
    assert "overflow:auto" in block.group(1).replace(" ", "")
    assert contrast(rules["pre.diff"]["color"], rules["pre.diff"]["background"]) >= AA_NORMAL


# --- In a real browser: the colours as the pages render them -------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_key_console_pages_meet_aa_contrast_as_rendered(console_browser, tmp_path, settings):
    from playwright.sync_api import expect

    from aion.auth.principal import system_principal
    from aion.incidents import record_incident
    from aion.rbac import Role
    from aion.testing.contrast import low_contrast_text
    from aion.testing.factories import make_user
    from aion.testing.kernel_proposals import act, persona, submit
    from router import services as router_services
    from router.policy_store import forget_cached_policy

    # Something on every page: an applied and a pending proposal, two router policy revisions, an open incident.
    proposer, admin = persona([Role.KERNEL_PROPOSER], name="p"), persona([Role.KERNEL_ADMIN], name="a")
    act(admin, submit(proposer)["id"], "approve")
    pending = submit(proposer, changes=[{"key": "vm.swappiness", "from": None, "to": 10}], risk_score=0.7)
    policy = tmp_path / "router.yml"
    settings.AION_ROUTER_POLICY_PATH = str(policy)
    shipped = (Path(settings.BASE_DIR) / "policies" / "router.yml").read_text()
    policy.write_text(shipped)
    forget_cached_policy()
    router_services.bootstrap_policy()
    policy.write_text(shipped.replace("seed: 42", "seed: 43"))
    router_services.reload_policy(actor=system_principal("acme", "test"), tenant_id="acme")
    forget_cached_policy()
    record_incident("auth_failure", "repeated bad API keys from one address", tenant_id="acme", source_ip="203.0.113.7")

    make_user("vera", [Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER, Role.ROUTER_ADMIN, Role.SECURITY_ADMIN])
    console_browser.login("vera")
    page = console_browser.page
    pages = {
        "proposals": ("/console/proposals/", "#proposals"),
        "proposal detail": (f"/console/proposals/{pending['id']}/", "#diff"),
        "new proposal": ("/console/proposals/new/?scope=sysctl", "#proposal-form"),
        "router": ("/console/router/", "#policy-diff"),
        "incidents": ("/console/security/incidents/", "#incidents"),
        "dashboard": ("/console/", "main"),
    }
    report = {}
    for name, (path, ready) in pages.items():
        console_browser.goto(path)
        expect(page.locator(ready).first).to_be_visible()
        checked, failures = low_contrast_text(page)
        assert checked > 10, f"{name}: only {checked} text elements found"
        report[name] = failures
    # The form's error state too (red messages on the light card).
    console_browser.goto("/console/proposals/new/?scope=sysctl")
    page.get_by_label("Changes, one per line: key = value").fill("net.core.somaxconn = 5")
    page.get_by_label("Justification").fill("backlog")
    page.get_by_role("button", name="Submit proposal").click()
    expect(page.locator("#id_changes_errors")).to_contain_text("Line 1 (net.core.somaxconn)")
    report["new proposal, with errors"] = low_contrast_text(page)[1]
    assert {name: failures for name, failures in report.items() if failures} == {}
