#!/usr/bin/env bash
# Make sure a headless Chromium and its chromedriver are here for tests/browser:
# /usr/bin/chromium and /usr/bin/chromedriver (Debian packages `chromium`, `chromium-driver`).
# Installs them with apt-get when missing and we are root (or have sudo); otherwise says exactly
# what to run. Exits non-zero when either is still missing or the two do not start.
# Also a Chinese font (fonts-wqy-microhei), or the screenshots show boxes instead of 汉字.
set -u

CHROMIUM=${FUPIN_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${FUPIN_CHROMEDRIVER:-/usr/bin/chromedriver}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

have_both() { [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; }
have_chinese_font() { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ]; }

if ! have_both; then
  if ! command -v apt-get >/dev/null; then
    echo "Chromium is missing and this machine has no apt-get: install Chromium and its chromedriver," >&2
    echo "then point FUPIN_CHROMIUM and FUPIN_CHROMEDRIVER at them (now: $CHROMIUM, $CHROMEDRIVER)." >&2
    exit 1
  fi
  echo "installing chromium and chromium-driver with apt-get ..."
  if ! { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null; }; then
    echo "Could not install Chromium: run 'sudo apt-get install chromium chromium-driver' (needs root)." >&2
    exit 1
  fi
fi

if ! have_both; then
  echo "Chromium or chromedriver is still missing after installing ($CHROMIUM, $CHROMEDRIVER):" >&2
  echo "run 'sudo apt-get install chromium chromium-driver' and check the paths." >&2
  exit 1
fi

browser_version=$("$CHROMIUM" --headless=new --no-sandbox --version 2>/dev/null || "$CHROMIUM" --version 2>/dev/null)
driver_version=$("$CHROMEDRIVER" --version 2>/dev/null)
if [ -z "$browser_version" ] || [ -z "$driver_version" ]; then
  echo "Chromium or chromedriver does not start ($CHROMIUM, $CHROMEDRIVER); reinstall: sudo apt-get install --reinstall chromium chromium-driver" >&2
  exit 1
fi
browser_major=$(echo "$browser_version" | grep -oE '[0-9]+' | head -n 1)
driver_major=$(echo "$driver_version" | grep -oE '[0-9]+' | head -n 1)
if [ "$browser_major" != "$driver_major" ]; then
  echo "Chromium ($browser_version) and chromedriver ($driver_version) differ in major version;" >&2
  echo "install both from the same source: sudo apt-get install chromium chromium-driver" >&2
  exit 1
fi
if ! have_chinese_font; then
  echo "installing a Chinese font (fonts-wqy-microhei) ..."
  { command -v apt-get >/dev/null && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq fonts-wqy-microhei >/dev/null; } \
    || echo "warning: no Chinese font: screenshots will show boxes; run 'sudo apt-get install fonts-wqy-microhei'" >&2
fi
echo "Chromium: $browser_version"
echo "chromedriver: $driver_version"
