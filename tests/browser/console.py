"""The web console in a real headless browser (Debian's chromium through chromedriver).

Driven by the Rust test `crates/server/tests/it/browser.rs`, which starts NSD and Sesame and
creates a PENDING domain. This script signs in, finds the domain among the PENDING identities,
opens it, reads its three records off the page and prints them (one `RECORD name type value`
line each); the Rust side publishes exactly those in NSD and answers `PUBLISHED` on stdin.
The script then presses "check now", waits for the page to say SUCCESS and that the DNS shows
every record as found, and saves a screenshot of the identity page.

    console.py ADMIN_URL TOKEN DOMAIN SCREENSHOT
Exit 0 and a last line `OK` on success; anything else is a failure with a reason on stderr.
"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def fail(msg):
    print(f"FAIL {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    admin, token, domain, screenshot = sys.argv[1:5]
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1400", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    wait = WebDriverWait(driver, 20)
    try:
        # Not signed in: the console sends us to sign-in.
        driver.get(f"{admin}/console/")
        wait.until(EC.presence_of_element_located((By.ID, "sign-in")))
        if not driver.current_url.endswith("/console/login"):
            fail(f"not sent to sign-in: {driver.current_url}")
        # A wrong token is refused.
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        driver.find_element(By.ID, "sign-in-button").click()
        wait.until(EC.presence_of_element_located((By.ID, "sign-in-error")))
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "sign-in-button").click()
        wait.until(EC.presence_of_element_located((By.ID, "filter")))

        # The PENDING identities, filtered in the form.
        Select(driver.find_element(By.ID, "filter-status")).select_by_value("PENDING")
        driver.find_element(By.ID, "filter-name").send_keys(domain)
        driver.find_element(By.ID, "filter-button").click()
        wait.until(EC.url_contains("status=PENDING"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#identities tr.identity")
        names = [r.find_element(By.CSS_SELECTOR, "a.identity-link").text for r in rows]
        if names != [domain]:
            fail(f"PENDING identities named {domain}: {names}")
        status = rows[0].find_element(By.CSS_SELECTOR, "td.status").text
        if status != "PENDING":
            fail(f"listed status {status}")
        pending = driver.find_element(By.CSS_SELECTOR, '#counts [data-status="PENDING"] .count').text
        if int(pending) < 1:
            fail(f"PENDING count {pending}")
        rows[0].find_element(By.CSS_SELECTOR, "a.identity-link").click()

        wait.until(EC.text_to_be_present_in_element((By.ID, "identity-name"), domain))
        if driver.find_element(By.ID, "verification-status").text != "PENDING":
            fail("the identity page does not say PENDING")
        records = driver.find_elements(By.CSS_SELECTOR, "#records tr.record")
        # Three DKIM CNAMEs and the recommended DMARC record.
        if len(records) != 4:
            fail(f"{len(records)} records on the page")
        for r in records:
            name = r.find_element(By.CSS_SELECTOR, "td.record-name code").text
            rtype = r.find_element(By.CSS_SELECTOR, "td.record-type").text
            value = r.find_element(By.CSS_SELECTOR, "td.record-value code").text
            dns = r.find_element(By.CSS_SELECTOR, "td.record-dns").text
            if not dns.startswith("missing"):
                fail(f"{name}: before publishing the DNS shows {dns!r}")
            if len(r.find_elements(By.CSS_SELECTOR, "button.copy")) != 2:
                fail(f"{name}: no copy buttons")
            print(f"RECORD {name} {rtype} {value}", flush=True)
        # A copy button says it copied.
        button = records[0].find_element(By.CSS_SELECTOR, "td.record-value button.copy")
        button.click()
        wait.until(lambda d: button.text == "Copied")
        print("READ", flush=True)

        line = sys.stdin.readline().strip()
        if line != "PUBLISHED":
            fail(f"expected PUBLISHED on stdin, got {line!r}")

        driver.find_element(By.ID, "check-now-button").click()
        wait.until(EC.presence_of_element_located((By.ID, "queued")))
        deadline = time.time() + 30
        while True:
            state = driver.find_element(By.ID, "verification-status").text
            seen = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#records td.record-dns")]
            if state == "SUCCESS" and seen == ["found"] * 4:
                break
            if time.time() > deadline:
                fail(f"never SUCCESS: status {state}, DNS {seen}")
            time.sleep(0.5)
            driver.refresh()
            wait.until(EC.presence_of_element_located((By.ID, "verification-status")))
        driver.save_screenshot(screenshot)
        # The console is readable on a phone: no horizontal scrolling of the page itself.
        driver.set_window_size(390, 844)
        driver.refresh()
        wait.until(EC.presence_of_element_located((By.ID, "verification-status")))
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 0:
            fail(f"the identity page scrolls sideways by {overflow}px at phone width")
        driver.save_screenshot(screenshot.replace(".png", "-phone.png"))
        print("OK", flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
