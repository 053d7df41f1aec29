"""A verification link in a real headless browser (Debian's chromium through chromedriver).

Driven by the Rust test `crates/server/tests/it/browser.rs`, which creates the address
identities and reads their links from the outbox. For Sesame's own link the script opens the
page, checks it shows the address and a button and reads on a phone-width screen, presses the
button and waits for "Address verified"; opening the link again still says so. For a
template's link it presses the button and waits to land on the template's success URL (a page
of another origin: the page's Content-Security-Policy must let that redirect through).

    link.py OWN_LINK ADDRESS TEMPLATE_LINK SUCCESS_URL SCREENSHOT
Exit 0 and a last line `OK` on success; anything else is a failure with a reason on stderr.
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def fail(msg):
    print(f"FAIL {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    own, address, templated, success, screenshot = sys.argv[1:6]
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=390,844", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    wait = WebDriverWait(driver, 20)
    try:
        driver.get(own)
        wait.until(EC.presence_of_element_located((By.ID, "confirm")))
        title = driver.find_element(By.ID, "title").text
        if title != "Verify your email address":
            fail(f"the page's title: {title!r}")
        shown = driver.find_element(By.ID, "address").text
        if shown != address:
            fail(f"the page shows {shown!r}, not {address!r}")
        wide = driver.execute_script(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth")
        if wide:
            fail("the page scrolls sideways on a phone-width screen")
        driver.save_screenshot(screenshot)
        driver.find_element(By.CSS_SELECTOR, "#confirm button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "title"), "Address verified"))
        if address not in driver.find_element(By.ID, "reason").text:
            fail("the verified page does not name the address")
        print("VERIFIED own", flush=True)
        driver.get(own)
        wait.until(EC.text_to_be_present_in_element((By.ID, "title"), "Address verified"))
        print("AGAIN own", flush=True)

        driver.get(templated)
        wait.until(EC.presence_of_element_located((By.ID, "confirm")))
        driver.find_element(By.CSS_SELECTOR, "#confirm button").click()
        wait.until(EC.url_to_be(success))
        print(f"LANDED {driver.current_url}", flush=True)
        print("OK", flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
