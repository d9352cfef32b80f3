# Sourced by the test scripts: a private Wine prefix for this checkout, with a
# persistent wineserver and Wine's services started once, output to /dev/null.
# Wine's background services otherwise inherit the first test's output pipes
# and the test runner waits for them forever.
#   . scripts/wine-env.sh; wine_env_start; ...; wine_env_stop
wine_env_start() {
    export WINEPREFIX="${WINEPREFIX:-$RS_ROOT/build/wine-prefix}"
    export WINEDEBUG=-all
    export WINEDLLOVERRIDES='winedbg.exe=d;mscoree,mshtml='
    mkdir -p "$WINEPREFIX"
    wineserver -p </dev/null >/dev/null 2>&1 || true # already running: keep it
    wine wineboot </dev/null >/dev/null 2>&1
    # Wine reports Windows 7 unless told otherwise; reseau targets Windows 10.
    wine winecfg -v win10 </dev/null >/dev/null 2>&1
}

wine_env_stop() {
    wineserver -k >/dev/null 2>&1 || true
}
