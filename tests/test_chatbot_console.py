"""The chatbot console pages as each role sees them (HTML parsed, never grepped): the list and its empty states, the
create wizard, settings tabs with the PRD rules shown next to refused values, clone, archive and restore, version
history with diff and rollback, workspace brand settings with the logo limits, escaping, and no inline code."""

from __future__ import annotations

import struct
import zlib
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Browser, Page, account_settings, add_user, bearer, login, open_client

ROLES = ("owner", "admin", "agent", "viewer")
SECTIONS = ("general", "hours", "ai", "escalation", "widget", "origins", "data", "behaviour")


def png(size: int = 0) -> bytes:
    """A valid 1×1 PNG, padded with an ancillary chunk to ``size`` bytes when asked."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    body += chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    padding = max(0, size - len(body) - 24)
    return body + (chunk(b"tEXt", b"c\x00" + b"x" * padding) if padding else b"") + chunk(b"IEND", b"")


class World:
    def __init__(self, client: TestClient):
        self.client = client
        users = {role: add_user(client, "Console Bots", f"{role}@cbots.example", role) for role in ROLES}
        self.api = bearer(login(client, "owner@cbots.example"))
        self.as_ = {role: Browser(client, user) for role, user in users.items()}
        self.fresh = Browser(client, add_user(client, "Empty Co", "owner@empty.example", "owner"))
        self.fresh_viewer = Browser(client, add_user(client, "Empty Co", "viewer@empty.example", "viewer"))
        add_user(client, "Other Co", "owner@other.example", "owner")
        other = bearer(login(client, "owner@other.example"))
        self.other_bot = self.bot("Elsewhere Bot", headers=other)

    def bot(self, name: str, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/chatbots", json={"name": name, **fields}, headers=headers or self.api)
        assert response.status_code == 201, response.text
        return response.json()

    def read(self, bot_id: str) -> dict[str, Any]:
        return self.client.get(f"/api/v1/chatbots/{bot_id}", headers=self.api).json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(account_settings(tmp_path_factory.mktemp("bot-console") / "data")) as client:
        yield World(client)


def no_inline_code(page: Page) -> None:
    assert page.inline_styles == 0 and all(s.get("src") for s in page.scripts)


# --- list and empty states -----------------------------------------------------------------------------------------
def test_empty_list_invites_managers_to_create_and_tells_viewers_who_can(world: World) -> None:
    owner = world.fresh.page("/chatbots")
    assert "No chatbots yet" in owner.texts["bots-empty"] and "create-link" in owner.texts
    no_inline_code(owner)
    viewer = world.fresh_viewer.page("/chatbots")
    assert "An owner or admin can create one" in viewer.texts["bots-empty"] and "create-link" not in viewer.texts
    assert "No archived chatbots" in world.fresh.page("/chatbots?show=archived").texts["bots-empty"]


# --- the wizard ----------------------------------------------------------------------------------------------------
def test_the_wizard_creates_a_bot_step_by_step_and_ends_with_the_snippet(world: World) -> None:
    owner = world.as_["owner"]
    start = owner.page("/chatbots/new")
    assert start.form("wizard-form")["fields"].keys() >= {"name", "csrf_token"}
    created = owner.post("/chatbots/new", {"name": "  Wizard   Bot "})
    assert created.status_code == 303
    base = created.headers["location"].rsplit("/setup/", 1)[0]
    assert created.headers["location"] == base + "/setup/personality"
    bot_id = base.rsplit("/", 1)[1]
    assert world.read(bot_id)["name"] == "Wizard Bot"
    assert owner.post(base + "/setup/personality", {"personality": "friendly"}).headers["location"] == \
        base + "/setup/hours"
    days = {f"day.{d}": "1" for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}
    hours = owner.post(base + "/setup/hours", {"mode": "hours", "start": "08:00", "end": "16:30",
                                               "timezone": "Europe/Berlin", **days})
    assert hours.headers["location"] == base + "/setup/greeting"
    greeting = owner.post(base + "/setup/greeting", {"greeting_message": "Hello from the wizard!",
                                                     "button_text": "Talk to us", "primary_color": "#0f766e"})
    assert greeting.headers["location"] == base + "/setup/done"
    bot = world.read(bot_id)
    assert bot["personality"] == "friendly" and bot["greeting_message"] == "Hello from the wizard!"
    assert bot["business_hours"]["enabled"] is True and bot["business_hours"]["timezone"] == "Europe/Berlin"
    assert bot["business_hours"]["schedule"]["monday"] == {"start": "08:00", "end": "16:30"}
    assert bot["business_hours"]["schedule"]["saturday"] is None
    assert bot["widget_settings"]["button_text"] == "Talk to us" and bot["version"] == 4  # one per step
    unchanged = owner.post(base + "/setup/greeting", {"greeting_message": "Hello from the wizard!",
                                                      "button_text": "Talk to us", "primary_color": "#0f766e"})
    assert unchanged.status_code == 303 and world.read(bot_id)["version"] == 4  # the same colour is no change
    assert bot["widget_settings"]["theme"]["primary_color"] == "#0F766E"  # as the colour picker sent it, upper-cased
    done = owner.page(base + "/setup/done")
    assert done.texts["done-title"] == "Wizard Bot is ready"
    assert done.texts["embed-code"] == (f'<script async src="http://testserver.local/widget.js" '
                                        f'data-chatbot="{bot["public_key"]}"></script>')
    assert "Copy" in done.texts["copy-embed"] and "Empty = any site can embed" in done.texts["origins-hint"]
    assert "preview-frame" in done.texts
    no_inline_code(done)


def test_the_wizard_shows_refused_values_next_to_their_field(world: World) -> None:
    owner = world.as_["owner"]
    short = owner.post("/chatbots/new", {"name": "ab"})
    assert short.status_code == 422
    assert Page(short.text).field_errors["name"] == "3–50 characters: letters, digits and single spaces."
    world.bot("Taken Wizard")
    dup = owner.post("/chatbots/new", {"name": "taken wizard"})
    assert dup.status_code == 409 and Page(dup.text).field_errors["name"] == "Already used by another chatbot."
    bot = world.bot("Zone Bot")
    zone = owner.post(f"/chatbots/{bot['id']}/setup/hours", {"mode": "hours", "start": "09:00", "end": "17:00",
                                                             "timezone": "Mars/Olympus", "day.monday": "1"})
    assert zone.status_code == 422
    assert "time zone" in Page(zone.text).field_errors["business_hours.timezone"]
    assert owner.get(f"/chatbots/{bot['id']}/setup/nonsense").status_code == 404


def test_only_managers_start_the_wizard(world: World) -> None:
    assert world.as_["agent"].get("/chatbots/new").status_code == 403
    assert world.as_["viewer"].post("/chatbots/new", {"name": "Nope Bot"}).status_code == 403
    assert world.as_["admin"].get("/chatbots/new").status_code == 200


# --- settings tabs -------------------------------------------------------------------------------------------------
def test_every_tab_renders_for_every_role_and_viewers_get_it_read_only(world: World) -> None:
    bot = world.bot("Tabs Bot")
    for role in ROLES:
        for section in SECTIONS:
            page = world.as_[role].page(f"/chatbots/{bot['id']}/settings/{section}")
            no_inline_code(page)
            assert "settings-form" in [f["id"] for f in page.forms]
            assert ("read-only" in page.texts) is (role == "viewer"), (role, section)
    viewer = world.as_["viewer"].page(f"/chatbots/{bot['id']}/settings/general")
    assert "clone-form" not in [f["id"] for f in viewer.forms] and "archive-link" not in viewer.texts
    agent = world.as_["agent"].page(f"/chatbots/{bot['id']}/settings/general")
    assert "clone-form" not in [f["id"] for f in agent.forms] and "archive-link" not in agent.texts
    owner = world.as_["owner"].page(f"/chatbots/{bot['id']}/settings/general")
    assert "clone-form" in [f["id"] for f in owner.forms] and "archive-link" in owner.texts
    assert world.as_["owner"].get(f"/chatbots/{bot['id']}").headers["location"] == \
        f"/chatbots/{bot['id']}/settings/general"
    assert world.as_["owner"].get(f"/chatbots/{bot['id']}/settings/nope").status_code == 404


def test_settings_are_saved_through_the_same_rules_as_the_api(world: World) -> None:
    bot = world.bot("Saver Bot")
    base = f"/chatbots/{bot['id']}/settings"
    agent = world.as_["agent"]
    ai = agent.post(base + "/ai", {"ai_settings.model": "local,extractive", "ai_settings.temperature": "0.3",
                                   "ai_settings.max_tokens": "800", "ai_settings.custom_instructions": "Be brief.",
                                   "ai_settings.fallback_responses": "Sorry!\n\nAsk a person."})
    assert ai.status_code == 303 and ai.headers["location"] == base + "/ai?saved=1"
    widget = agent.post(base + "/widget", {"widget_settings.position": "bottom-left",
                                           "widget_settings.size": "large", "widget_settings.button_text": "Help",
                                           "widget_settings.theme.primary_color": "#112233",
                                           "widget_settings.theme.secondary_color": "#1E40AF",
                                           "widget_settings.theme.text_color": "#FFFFFF",
                                           "widget_settings.theme.background_color": "#FFFFFF",
                                           "widget_settings.avatar_url": ""})
    assert widget.status_code == 303
    data = agent.post(base + "/data", {"data_collection.collect_email": "1",
                                       "data_collection.custom_fields.0.name": "company",
                                       "data_collection.custom_fields.0.label": "Company",
                                       "data_collection.custom_fields.0.type": "text",
                                       "data_collection.custom_fields.0.required": "1"})
    assert data.status_code == 303
    hours = agent.post(base + "/hours", {"business_hours.enabled": "1", "business_hours.timezone": "Asia/Tokyo",
                                         "business_hours.offline_message": "Back at nine.",
                                         "business_hours.schedule.saturday.open": "1",
                                         "business_hours.schedule.saturday.start": "10:00",
                                         "business_hours.schedule.saturday.end": "14:00"})
    assert hours.status_code == 303
    saved = world.read(bot["id"])
    assert saved["ai_settings"]["model"] == "local,extractive" and saved["ai_settings"]["temperature"] == 0.3
    assert saved["ai_settings"]["fallback_responses"] == ["Sorry!", "Ask a person."]
    assert saved["ai_settings"]["enable_fallback_responses"] is False
    assert saved["widget_settings"]["position"] == "bottom-left" and saved["widget_settings"]["avatar_url"] is None
    assert saved["data_collection"] == {"collect_email": True, "collect_name": False, "custom_fields": [
        {"name": "company", "label": "Company", "required": True}]}  # type "text" is the default, omitted
    assert saved["business_hours"]["schedule"]["saturday"] == {"start": "10:00", "end": "14:00"}
    assert saved["business_hours"]["schedule"]["monday"] is None
    assert saved["version"] == 5
    page = world.as_["viewer"].page(base + "/ai?saved=1")
    assert page.form("settings-form")["fields"]["ai_settings.max_tokens"] == "800"
    assert world.as_["viewer"].post(base + "/ai", {"ai_settings.temperature": "1"}).status_code == 403


def test_refused_values_come_back_with_the_rule_next_to_the_field(world: World) -> None:
    bot = world.bot("Strict Bot")
    base = f"/chatbots/{bot['id']}/settings"
    owner = world.as_["owner"]
    hot = owner.post(base + "/ai", {"ai_settings.model": "auto", "ai_settings.temperature": "3",
                                    "ai_settings.max_tokens": "500"})
    assert hot.status_code == 422
    page = Page(hot.text)
    assert page.field_errors == {"ai_settings.temperature": "A number from 0 to 2."}
    assert page.form("settings-form")["fields"]["ai_settings.temperature"] == "3.0"  # what was typed stays
    words = owner.post(base + "/ai", {"ai_settings.model": "auto", "ai_settings.temperature": "0.5",
                                      "ai_settings.max_tokens": "lots"})
    assert words.status_code == 422
    assert Page(words.text).field_errors["ai_settings.max_tokens"].startswith("Enter a whole number.")
    origins = owner.post(base + "/origins", {"allowed_origins": "https://shop.example.com\nhttps://x.example/path"})
    assert origins.status_code == 422 and "scheme://host" in Page(origins.text).field_errors["allowed_origins"]
    colour = owner.post(base + "/widget", {"widget_settings.theme.primary_color": "red",
                                           "widget_settings.button_text": "Hi"})
    assert Page(colour.text).field_errors["widget_settings.theme.primary_color"] == "A hex colour such as #3B82F6."
    slow = owner.post(base + "/behaviour", {"behavior_settings.response_delay": "9000",
                                            "behavior_settings.max_conversation_length": "50",
                                            "behavior_settings.inactivity_timeout": "300000"})
    assert "0 to 5000" in Page(slow.text).field_errors["behavior_settings.response_delay"]
    assert world.read(bot["id"])["version"] == 1  # nothing refused was saved


def test_the_allowed_sites_hint_shows_while_the_list_is_empty(world: World) -> None:
    bot = world.bot("Origins Bot")
    base = f"/chatbots/{bot['id']}/settings/origins"
    empty = world.as_["viewer"].page(base)
    assert "Empty = any site can embed this widget." in empty.texts["origins-hint"]
    assert world.as_["owner"].post(base, {"allowed_origins": "https://shop.example.com"}).status_code == 303
    assert "origins-hint" not in world.as_["owner"].page(base).texts
    install = world.as_["owner"].page(f"/chatbots/{bot['id']}/install")
    assert "origins-hint" not in install.texts and "not in this bot's allowed sites" in install.texts["preview-blocked"]


# --- clone, archive, restore ---------------------------------------------------------------------------------------
def test_clone_archive_and_restore_from_the_console(world: World) -> None:
    bot = world.bot("Lifecycle Bot", greeting_message="Howdy")
    owner = world.as_["owner"]
    cloned = owner.post(f"/chatbots/{bot['id']}/clone")
    assert cloned.status_code == 303 and cloned.headers["location"].endswith("/settings/general?saved=cloned")
    copy_id = cloned.headers["location"].split("/")[2]
    assert world.read(copy_id)["name"] == "Lifecycle Bot copy"
    assert world.read(copy_id)["greeting_message"] == "Howdy"
    assert "knowledge base starts empty" in owner.page(cloned.headers["location"]).alerts[0]
    confirm = owner.page(f"/chatbots/{bot['id']}/archive")
    assert confirm.texts["confirm-title"] == "Archive Lifecycle Bot?" and confirm.form("archive-form")
    archived = owner.post(f"/chatbots/{bot['id']}/archive")
    assert archived.headers["location"] == "/chatbots?notice=archived"
    assert world.read(bot["id"])["status"] == "archived"
    current = owner.page("/chatbots")
    assert f"bot-{bot['id']}" not in current.texts and f"bot-{copy_id}" in current.texts
    listed = owner.page("/chatbots?show=archived")
    assert f"bot-{bot['id']}" in listed.texts
    assert owner.post(f"/chatbots/{bot['id']}/restore").headers["location"] == "/chatbots?notice=restored"
    assert world.read(bot["id"])["status"] == "active"
    assert world.as_["agent"].post(f"/chatbots/{bot['id']}/clone").status_code == 403
    assert world.as_["agent"].get(f"/chatbots/{bot['id']}/archive").status_code == 403
    assert world.as_["agent"].post(f"/chatbots/{bot['id']}/archive").status_code == 403


# --- versions ------------------------------------------------------------------------------------------------------
def test_version_history_diff_and_rollback(world: World) -> None:
    bot = world.bot("Timeline Bot")
    base = f"/chatbots/{bot['id']}"
    owner = world.as_["owner"]
    owner.post(base + "/settings/ai", {"ai_settings.model": "auto", "ai_settings.temperature": "1.2",
                                       "ai_settings.max_tokens": "700"})
    history = world.as_["viewer"].page(base + "/versions")
    assert "ai_settings.max_tokens, ai_settings.temperature" in history.texts["version-2"]
    assert "Created" in history.texts["version-1"]
    diff = world.as_["viewer"].page(base + "/versions/1")
    assert "rollback-form" not in [f["id"] for f in diff.forms]  # viewers cannot roll back
    table = diff.texts["diff"]
    assert "ai_settings.temperature 1.2 0.7" in table and "ai_settings.max_tokens 700 500" in table
    page = owner.page(base + "/versions/1")
    assert page.form("rollback-form")["action"] == base + "/versions/1/rollback"
    done = world.as_["agent"].post(base + "/versions/1/rollback")
    assert done.status_code == 303 and done.headers["location"] == base + "/versions?saved=rolledback"
    after = world.read(bot["id"])
    assert after["version"] == 3 and after["ai_settings"]["temperature"] == 0.7
    assert after["ai_settings"]["max_tokens"] == 500
    assert "Rolled back to v1" in owner.page(base + "/versions").texts["version-3"]
    assert "no-changes" in owner.page(base + "/versions/1").texts
    assert world.as_["viewer"].post(base + "/versions/1/rollback").status_code == 403
    assert owner.get(base + "/versions/42").status_code == 404
    owner.post(base + "/settings/general", {"name": "Timeline Bot Renamed", "status": "active",
                                            "personality": "professional", "greeting_message": "Hi"})
    world.bot("Timeline Bot")
    clash = owner.post(base + "/versions/1/rollback")
    assert clash.status_code == 409
    assert Page(clash.text).alerts == ["Version 1 was not restored: another chatbot now uses that version's name."]


# --- scope, escaping, preview --------------------------------------------------------------------------------------
def test_other_workspaces_bots_are_not_found_and_roles_come_first(world: World) -> None:
    other = world.other_bot["id"]
    owner = world.as_["owner"]
    for path in ("", "/settings/general", "/install", "/preview", "/versions", "/versions/1", "/archive",
                 "/setup/personality"):
        assert owner.get(f"/chatbots/{other}{path}").status_code == 404, path
    for path in ("/settings/ai", "/clone", "/archive", "/restore", "/versions/1/rollback", "/setup/greeting"):
        assert owner.post(f"/chatbots/{other}{path}").status_code == 404, path
        assert world.as_["viewer"].post(f"/chatbots/{other}{path}").status_code == 403, path


def test_user_text_is_escaped(world: World) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    bot = world.bot("Escape Bot", description=evil, greeting_message=evil)
    listing = world.as_["owner"].get("/chatbots")
    page = Page(listing.text)
    assert evil in page.texts[f"bot-{bot['id']}"] and all(s.get("src") for s in page.scripts)
    assert "<img src=x" not in listing.text
    general = world.as_["owner"].get(f"/chatbots/{bot['id']}/settings/general")
    assert Page(general.text).texts["f-greeting_message"] == evil and "<script>alert" not in general.text


def test_the_preview_page_loads_the_real_widget_and_only_the_console_frames_it(world: World) -> None:
    bot = world.bot("Preview Bot")
    response = world.as_["viewer"].get(f"/chatbots/{bot['id']}/preview")
    assert response.status_code == 200
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers
    scripts = Page(response.text).scripts
    assert scripts == [{"async": None, "src": "/widget.js", "data-chatbot": bot["public_key"]}]
    console = world.as_["viewer"].get(f"/chatbots/{bot['id']}/install")
    assert "frame-ancestors 'none'" in console.headers["content-security-policy"]


# --- workspace brand -----------------------------------------------------------------------------------------------
def test_workspace_brand_settings(world: World) -> None:
    owner = world.as_["owner"]
    page = owner.page("/settings/workspace")
    assert page.form("workspace-form")["fields"]["name"] == "Console Bots" and "logo-empty" in page.texts
    saved = owner.post("/settings/workspace", {"name": "Console <b>Bots</b>", "primary_color": "#112233",
                                               "secondary_color": "#445566", "timezone": "Europe/Lisbon"})
    assert saved.status_code == 303
    shown = owner.get("/settings/workspace")
    fields = Page(shown.text).form("workspace-form")["fields"]
    assert fields["name"] == "Console <b>Bots</b>" and "<b>Bots</b>" not in shown.text
    assert fields["primary_color"] == "#112233"
    wrong = owner.post("/settings/workspace", {"name": "", "primary_color": "blue", "secondary_color": "#445566",
                                               "timezone": "Nowhere/Land"})
    assert wrong.status_code == 422
    errors = Page(wrong.text).field_errors
    assert set(errors) == {"name", "primary_color"}
    zone = owner.post("/settings/workspace", {"name": "Console Bots", "primary_color": "#112233",
                                              "secondary_color": "#445566", "timezone": "Nowhere/Land"})
    assert zone.status_code == 422 and "time zone" in Page(zone.text).field_errors["timezone"]
    assert world.as_["agent"].get("/settings/workspace").status_code == 403
    assert world.as_["viewer"].post("/settings/workspace", {"name": "X"}).status_code == 403


def test_brand_colours_reach_the_console_and_new_bots(world: World) -> None:
    owner = world.as_["owner"]
    saved = owner.post("/settings/workspace", {"name": "Console Bots", "primary_color": "#AA3300",
                                               "secondary_color": "#002244", "timezone": "UTC"})
    assert saved.status_code == 303
    page = owner.get("/dashboard").text
    assert '<link rel="stylesheet" href="/settings/workspace/brand.css">' in page
    css = world.as_["viewer"].get("/settings/workspace/brand.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "--brand-primary: #AA3300" in css.text and "--brand-secondary: #002244" in css.text
    theme = world.bot("Branded Bot")["widget_settings"]["theme"]
    assert (theme["primary_color"], theme["secondary_color"]) == ("#AA3300", "#002244")
    explicit = world.bot("Own Colours", widget_settings={"theme": {"primary_color": "#123456"}})
    assert explicit["widget_settings"]["theme"]["primary_color"] == "#123456"
    elsewhere = world.fresh.get("/settings/workspace/brand.css").text   # another workspace: its own (default) colours
    assert "#AA3300" not in elsewhere and "--brand-primary: #2563EB" in elsewhere


def test_logo_upload_checks_the_bytes_and_the_size(world: World) -> None:
    owner = world.as_["owner"]
    too_big = owner.post("/settings/workspace/logo", files={"logo": ("big.png", png(3 * 1024 * 1024), "image/png")})
    assert too_big.status_code == 413 and Page(too_big.text).field_errors["logo"] == "At most 2 MB."
    renamed = owner.post("/settings/workspace/logo", files={"logo": ("logo.png", b"just some text\n" * 10,
                                                                     "image/png")})
    assert renamed.status_code == 415 and Page(renamed.text).field_errors["logo"] == "A PNG or JPEG image."
    assert owner.get("/settings/workspace/logo").status_code == 404
    image = png(1024 * 1024)
    ok = owner.post("/settings/workspace/logo", files={"logo": ("whatever.txt", image, "text/plain")})
    assert ok.status_code == 303 and ok.headers["location"] == "/settings/workspace?saved=logo"
    served = world.as_["viewer"].get("/settings/workspace/logo")
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
    assert "logo-empty" not in owner.page("/settings/workspace").texts
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100
    assert owner.post("/settings/workspace/logo", files={"logo": ("a.jpg", jpeg, "image/jpeg")}).status_code == 303
    assert world.as_["owner"].get("/settings/workspace/logo").headers["content-type"] == "image/jpeg"
    folder = world.client.app.state.services.settings.data.uploads / "brand"
    assert len(list(folder.iterdir())) == 1  # the old logo file was removed
    assert world.fresh.get("/settings/workspace/logo").status_code == 404  # another workspace's logo is not served
