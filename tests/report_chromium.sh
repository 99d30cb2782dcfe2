#!/usr/bin/env bash
# `expertrace report` in a real browser: Debian's headless Chromium renders the page written for
# tests/fixtures/report and the test checks that
#   - the verb's exit codes and messages on bad input (2 usage, 1 missing or malformed summary);
#   - the rendered DOM holds the six figures (inline <svg> with their ids) and the tables;
#   - each figure is laid out at a real size with its text (a copy of the page with a probe script
#     measures every <svg class="fig">; the page itself carries no script);
#   - the page asks the network for nothing: Chromium's NetLog is recorded and must show no request
#     made on behalf of the page (a control page with one remote image must show one, so the
#     check can fail), with every host name mapped to NOTFOUND in case anything tried;
#   - a screenshot is taken (REPORT_SCREENSHOT=path keeps a copy).
#
# usage: report_chromium.sh CHROMIUM EXPERTRACE FIXTURE_DIR WORK_DIR
set -euo pipefail

chromium=$1 exe=$2 fixture=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
fail() { echo "report_chromium: FAIL: $*" >&2; exit 1; }

# ---- the verb's contract ---------------------------------------------------------------------
set +e
"$exe" report >/dev/null 2>"$work/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] || fail "report without a directory: exit $rc, expected 2"
set +e
"$exe" report "$work/missing" -o "$work/x.html" 2>"$work/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "missing results: exit $rc, expected 1"
grep -q "missing/summary.json" "$work/err.txt" || fail "missing results: $(cat "$work/err.txt")"
mkdir -p "$work/bad"
sed -E 's/"selected":[[:space:]]*0,/"selected": "zero",/' "$fixture/summary.json" \
  >"$work/bad/summary.json"
set +e
"$exe" report "$work/bad" 2>"$work/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "malformed summary: exit $rc, expected 1"
grep -q "bad/summary.json: field 'layer.selected' is a string" "$work/err.txt" ||
  fail "malformed summary: $(cat "$work/err.txt")"

page=$work/report.html
"$exe" report "$fixture" -o "$page" 2>"$work/err.txt" || fail "report: $(cat "$work/err.txt")"
# nothing in the page that a browser would fetch
outside='<script|<link|<img|<iframe| src=|href=|url\(|@import|://'
if grep -Eq "$outside" "$page"; then
  fail "the page refers to something outside it: $(grep -Eo ".{20}($outside).{20}" "$page")"
fi

# ---- Chromium --------------------------------------------------------------------------------
# No background fetches of the browser's own (updates, sync, translation, ...): what is left in the
# NetLog on behalf of a file:// page is the page's doing.
run_chromium() { # run_chromium PROFILE_NAME EXTRA_ARGS... URL
  local profile=$work/profile-$1
  shift
  timeout 180 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --disable-extensions --disable-sync --disable-background-networking \
    --disable-component-update --disable-default-apps --disable-features=Translate,MediaRouter \
    --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$profile" "$@" 2>>"$work/chromium.log"
}
page_requests() { # requests made for a file:// page in a NetLog
  { grep -o '"network_isolation_key":"file://' "$1" || true; } | wc -l
}

# the control: a page with one remote image must be seen asking for it
printf '<!DOCTYPE html><html><body><img src="http://report-test.invalid/x.png"></body></html>\n' \
  >"$work/control.html"
run_chromium control --log-net-log="$work/control-netlog.json" --net-log-capture-mode=Everything \
  --dump-dom "file://$work/control.html" >/dev/null || fail "chromium failed on the control page"
[ "$(page_requests "$work/control-netlog.json")" -ge 1 ] ||
  fail "the NetLog check saw no request from the control page: it cannot detect one"

# the report: rendered DOM, NetLog
run_chromium report --log-net-log="$work/netlog.json" --net-log-capture-mode=Everything \
  --dump-dom "file://$page" >"$work/dom.html" || fail "chromium failed on the report"
n=$(page_requests "$work/netlog.json")
[ "$n" -eq 0 ] || fail "the report made $n network request(s): see $work/netlog.json"
n=$({ grep -o '<svg ' "$work/dom.html" || true; } | wc -l)
[ "$n" -eq 6 ] || fail "$n <svg> elements in the rendered DOM, expected 6"
for id in layer-sweep expert-bars expert-ranking heatmap-residual heatmap-attention heatmap-moe \
  selected-layer sweep-table expert-table coalition-table cases-table settings-table \
  environment-table counts-table; do
  [ "$({ grep -o "id=\"$id\"" "$work/dom.html" || true; } | wc -l)" -eq 1 ] ||
    fail "no single id=\"$id\" in the DOM"
done
grep -q '<circle class="pt"' "$work/dom.html" || fail "no points in the layer sweep"
grep -q 'L0E004' "$work/dom.html" || fail "the selected expert is not named"

# the layout: a copy with a probe script (and without the policy that would block it) measures
# every figure: "id:WIDTHxHEIGHT:TEXTS:VISIBLE_TEXTS"
# (no & in it: sed would put the matched text there)
probe='<script>var o=[];document.querySelectorAll("svg.fig").forEach(function(s){'
probe+='var r=s.getBoundingClientRect(),t=s.querySelectorAll("text"),v=0;'
probe+='t.forEach(function(e){var b=e.getBoundingClientRect();if(b.width>0)if(b.height>0)v++;});'
probe+='o.push(s.id+":"+Math.round(r.width)+"x"+Math.round(r.height)+":"+t.length+":"+v);});'
probe+='document.body.setAttribute("data-layout",o.join(" "));</script>'
sed -e '/Content-Security-Policy/d' -e "s#</main></body>#</main>${probe}</body>#" "$page" \
  >"$work/probe.html"
run_chromium probe --window-size=1120,900 --dump-dom "file://$work/probe.html" \
  >"$work/probe-dom.html" || fail "chromium failed on the probe page"
layout=$({ grep -o 'data-layout="[^"]*"' "$work/probe-dom.html" || true; } |
  sed 's/data-layout="//; s/"$//')
[ -n "$layout" ] || fail "the probe measured nothing"
n=0
for f in $layout; do
  IFS=: read -r id size texts visible <<<"$f"
  w=${size%x*} h=${size#*x}
  [ "$w" -ge 250 ] && [ "$h" -ge 150 ] || fail "figure $id is laid out at ${w}x${h}"
  [ "$texts" -ge 10 ] && [ "$visible" -eq "$texts" ] ||
    fail "figure $id: $visible of $texts labels rendered"
  n=$((n + 1))
done
[ "$n" -eq 6 ] || fail "the probe measured $n figures, expected 6"
echo "report_chromium: layout $layout"

# the screenshot
run_chromium shot --hide-scrollbars --window-size=1120,5200 --screenshot="$work/report.png" \
  "file://$page" >/dev/null || fail "chromium failed to take the screenshot"
[ "$(head -c 4 "$work/report.png" | od -An -tx1 | tr -d ' ')" = "89504e47" ] ||
  fail "the screenshot is not a PNG"
[ "$(wc -c <"$work/report.png")" -gt 50000 ] || fail "the screenshot is (nearly) blank"
if [ -n "${REPORT_SCREENSHOT:-}" ]; then cp "$work/report.png" "$REPORT_SCREENSHOT"; fi
echo "report_chromium: ok ($work/report.png)"
