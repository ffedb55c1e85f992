#!/usr/bin/env python3
"""The web console in a real browser (Debian's chromium and chromedriver,
driven with selenium), as a person would use it after a known workload.

Run by tests/integration/console/browser.rs, which starts PostgreSQL,
pgtrail, ClickHouse and the console and passes what the workload did:

    console_browser.py URL CASE_JSON SCREENSHOT_DIR

CASE_JSON: {"auditor": [name, pw], "dba": [name, pw], "ines_session": id,
"ines_statements": [...]}. Every check that fails raises; screenshots
of every page land in SCREENSHOT_DIR.
"""

import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL, CASE, SHOTS = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
CHECKS = []


def check(what, ok, detail=""):
    CHECKS.append(what)
    if not ok:
        raise AssertionError(f"{what}: {detail}")


def browser():
    opts = Options()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=opts, service=service)


def shot(d, name, max_height=1500):
    """A screenshot of the page as tall as its content (capped)."""
    height = d.execute_script("return document.documentElement.scrollHeight")
    chrome = d.execute_script("return window.outerHeight - window.innerHeight")
    d.set_window_size(1280, max(600, min(int(height), max_height)) + int(chrome))
    os.makedirs(SHOTS, exist_ok=True)
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))
    d.set_window_size(1280, 900)


def text(d, css):
    return d.find_element(By.CSS_SELECTOR, css).text


def wait_for(d, css):
    """Waits (10 s at most) for an element of the page a click led to."""
    WebDriverWait(d, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))


def login(d, name, pw):
    d.get(URL + "/")
    check("no page without a login", "/login" in d.current_url, d.current_url)
    d.find_element(By.NAME, "username").send_keys(name)
    d.find_element(By.NAME, "password").send_keys(pw)
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(d, "nav .who")
    check(f"{name} logged in", d.current_url.rstrip("/") == URL, d.current_url)


def tile(d, label):
    for t in d.find_elements(By.CSS_SELECTOR, "#counts .tile"):
        if t.find_element(By.CSS_SELECTOR, ".l").text == label:
            return int(t.find_element(By.CSS_SELECTOR, ".n").text)
    raise AssertionError(f"no tile {label}")


def auditor_walk(d):
    d.get(URL + "/")
    shot(d, "01-login")
    login(d, *CASE["auditor"])
    check("overview: 1 failed login", tile(d, "failed logins") == 1)
    check("overview: errors", tile(d, "errors") == 2, tile(d, "errors"))
    check("overview: privilege changes", tile(d, "privilege changes") == 2, tile(d, "privilege changes"))
    check("overview: DDL", tile(d, "DDL") == 1, tile(d, "DDL"))
    check("overview: a change outside pgtrail", tile(d, "changes outside pgtrail") == 1)
    people = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#people td:first-child a")]
    check("overview: people active", {"ines", "omar"} <= set(people), people)
    shot(d, "02-overview")

    # Overview -> sessions of ines -> her session's timeline.
    d.find_element(By.LINK_TEXT, "Sessions").click()
    wait_for(d, "#sessions")
    d.find_element(By.NAME, "user").send_keys("ines")
    d.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(d, 10).until(lambda d: "user=ines" in d.current_url)
    rows = d.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
    check("sessions: ines's session and her failed login", len(rows) == 2, len(rows))
    shot(d, "03-sessions")
    worked = [r for r in rows if "auth_ok" in r.text]
    check("sessions: one session logged in", len(worked) == 1, [r.text for r in rows])
    worked[0].find_element(By.CSS_SELECTOR, "td:first-child a").click()
    wait_for(d, "#timeline")
    check("timeline url", CASE["ines_session"] in d.current_url, d.current_url)
    sqls = [p.text for p in d.find_elements(By.CSS_SELECTOR, "#timeline pre.sql")]
    want = CASE["ines_statements"]
    check("timeline: ines's statements in order", sqls[: len(want)] == want, sqls)
    rolled = d.find_elements(By.CSS_SELECTOR, "#timeline li.txn.rolledback pre.sql")
    check("timeline: the rolled-back DELETE is marked",
          any("DELETE FROM orders" in r.text for r in rolled), [r.text for r in rolled])
    diffs = d.find_elements(By.CSS_SELECTOR, "#timeline table.diff")
    check("timeline: row changes as before/after", len(diffs) >= 2, len(diffs))
    # tokio-postgres sends the int4 in binary: recorded as bytea hex.
    check("timeline: parameters for an auditor", "$1=\\x0000000a" in d.page_source)
    shot(d, "04-session", max_height=2200)

    # Timeline -> the UPDATE's statement record -> its table.
    upd = [s for s in d.find_elements(By.CSS_SELECTOR, "#timeline .stmt")
           if "UPDATE orders" in s.find_element(By.CSS_SELECTOR, "pre.sql").text][0]
    upd.find_element(By.CSS_SELECTOR, "a.seq").click()
    wait_for(d, "#statement")
    check("statement page", "UPDATE orders SET qty = 5" in text(d, "#statement"))
    check("statement page: the row it changed", len(d.find_elements(By.CSS_SELECTOR, "table.diff")) == 1)
    shot(d, "05-statement")
    d.find_element(By.CSS_SELECTOR, "#statement a.obj").click()
    wait_for(d, "#table-users")
    users = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#table-users td:first-child a")]
    check("table: ines wrote orders", "ines" in users, users)
    history = text(d, "#row-history")
    check("table: row history shows the insert and the update", "widget" in history and "UPDATE" in history.upper(), history)
    shot(d, "06-table", max_height=2000)

    # Search by text, then the top fingerprints.
    d.get(URL + "/statements")
    d.find_element(By.NAME, "q").send_keys("widget")
    d.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(d, 10).until(lambda d: "q=widget" in d.current_url)
    found = [td.text for td in d.find_elements(By.CSS_SELECTOR, "#statements td.sql")]
    check("search: the INSERT of widget", any("INSERT INTO orders" in f for f in found), found)
    check("search: only statements with the word", all("widget" in f.lower() for f in found), found)
    shot(d, "07-statements")

    d.get(URL + "/person?name=ines")
    touched = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#touched td:first-child a")]
    check("person: tables touched", "orders" in touched, touched)
    check("person: failed login", "password authentication failed" in d.page_source or "auth" in d.page_source)
    shot(d, "08-person", max_height=2000)

    for view, want_text, name in (("failed_logins", "ines", "09-failed-logins"),
                                  ("privilege_changes", "GRANT SELECT ON customers TO omar", "10-privilege-changes"),
                                  ("ddl_changes", "CREATE INDEX orders_item", "11-ddl")):
        d.get(f"{URL}/compliance/{view}")
        check(f"{view} lists its rows", want_text in d.page_source)
        shot(d, name)
        href = d.find_element(By.ID, "export").get_attribute("href")
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in d.get_cookies())
        req = urllib.request.Request(href, headers={"Cookie": cookie})
        with urllib.request.urlopen(req) as r:
            csv = r.read().decode()
        check(f"{view} exports CSV", csv.startswith("time,user,") and want_text in csv, csv[:300])

    # Overview -> the write that bypassed pgtrail, with its before/after.
    d.get(URL + "/")
    for t in d.find_elements(By.CSS_SELECTOR, "#counts .tile"):
        if t.find_element(By.CSS_SELECTOR, ".l").text == "changes outside pgtrail":
            t.click()
            break
    wait_for(d, "form.filters")
    outside = d.page_source
    check("changes outside pgtrail: the direct update", "changed directly" in outside)
    shot(d, "14-changes-outside")

    d.get(URL + "/access")
    access = text(d, "#access")
    check("access: the session view is on record", CASE["ines_session"] in access)
    check("access: the exports are on record", "export" in access)
    shot(d, "12-access")
    d.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_for(d, "input[name=password]")
    check("logged out", "/login" in d.current_url, d.current_url)


def dba_walk(d):
    login(d, *CASE["dba"])
    d.get(URL + "/session/" + CASE["ines_session"])
    page = d.page_source
    check("dba: no parameters", "$1=" not in page)
    check("dba: no redacted values", "hmac:" not in page and "(redacted)" in page)
    shot(d, "13-session-dba", max_height=2200)
    d.get(URL + "/access")
    check("dba: no console access page", "may not see" in d.page_source)


def main():
    d = browser()
    try:
        auditor_walk(d)
        dba_walk(d)
    finally:
        d.quit()
    print(f"console browser: {len(CHECKS)} passed, 0 failed")


if __name__ == "__main__":
    main()
