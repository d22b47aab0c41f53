#!/bin/sh
# The process node's desktop container: an X server on $DISPLAY, the openbox window manager and
# an xterm. It exits with the X server's status when X ends, and fails at once, saying which,
# when a program is missing. VDI_X_SERVER=xvnc runs Xvnc (resizable, RandR) instead of Xvfb;
# VDI_SCREEN sets the initial geometry (default 1280x720x24).
set -u
: "${DISPLAY:?DISPLAY is not set: the process node sets it for every container}"
screen="${VDI_SCREEN:-1280x720x24}"
server="${VDI_X_SERVER:-xvfb}"
n="${DISPLAY#:}"
n="${n%%.*}"

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "desktop: $1 is not installed ($2); install the Debian package $3" >&2
        exit 127
    fi
}
need openbox "the window manager" openbox
need xterm "the terminal" xterm
need xprop "to wait for the window manager" x11-utils
case "$server" in
    xvnc)
        need Xvnc "the X server" tigervnc-standalone-server
        geometry="${screen%x*}"
        depth="${screen##*x}"
        Xvnc "$DISPLAY" -geometry "$geometry" -depth "$depth" -SecurityTypes None \
            -localhost -rfbport -1 -nolisten tcp &
        ;;
    xvfb)
        need Xvfb "the X server" xvfb
        Xvfb "$DISPLAY" -screen 0 "$screen" -nolisten tcp &
        ;;
    *)
        echo "desktop: VDI_X_SERVER=$server: expected xvfb or xvnc" >&2
        exit 2
        ;;
esac
x=$!

# Wait for the X socket (at most 10 s), or for X to die trying.
i=0
while [ ! -S "/tmp/.X11-unix/X$n" ]; do
    if ! kill -0 "$x" 2>/dev/null; then
        wait "$x"
        status=$?
        echo "desktop: the X server on $DISPLAY exited with status $status before it was ready" >&2
        exit "$status"
    fi
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then
        echo "desktop: the X server on $DISPLAY did not open /tmp/.X11-unix/X$n within 10 s" >&2
        kill "$x" 2>/dev/null
        exit 1
    fi
    sleep 0.05
done
echo "desktop: X server ready on $DISPLAY (pid $x)"

openbox &
wm=$!
# A window mapped before the window manager manages the screen is adopted without focus: wait
# (at most 5 s) for openbox to announce itself, so the terminal opens focused and typing from the
# first connection reaches it.
i=0
while ! xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'; do
    i=$((i + 1))
    [ "$i" -gt 100 ] && break
    sleep 0.05
done
# The terminal starts in the home directory (the session's home volume).
cd "${HOME:-.}" || true
xterm -geometry 100x30+20+20 &
term=$!
echo "desktop: openbox (pid $wm) and xterm (pid $term) started"

trap 'kill -TERM "$x" "$wm" "$term" 2>/dev/null' TERM INT
wait "$x"
status=$?
# `wait` returns early when a trapped signal arrives: wait for X itself.
while kill -0 "$x" 2>/dev/null; do
    wait "$x"
    status=$?
done
echo "desktop: the X server on $DISPLAY exited with status $status"
kill -TERM "$wm" "$term" 2>/dev/null
exit "$status"
