# scripts/lib/centrifugo.sh — the Centrifugo that scripts/bench-vs-centrifugo.sh
# and internal/fanout's integration test compare handoff with, and where it
# is installed. Sourced by bench-vs-centrifugo.sh and install-test-deps.sh;
# internal/fanout/centrifugo_integration_test.go looks in the same place.
CENTRIFUGO_VERSION=v6.9.1
CENTRIFUGO_DIR=${CENTRIFUGO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/handoff-bench/centrifugo-$CENTRIFUGO_VERSION}

# install_centrifugo installs it with go install, only when it is missing. A
# go-installed binary reports version 0.0.0, so a stamp file beside it
# records which version it is.
install_centrifugo() {
	if [[ -x $CENTRIFUGO_DIR/centrifugo && $(cat "$CENTRIFUGO_DIR/.version" 2>/dev/null) == "$CENTRIFUGO_VERSION" ]]; then
		return
	fi
	echo "installing Centrifugo $CENTRIFUGO_VERSION into $CENTRIFUGO_DIR with go install (about 5-10 minutes of compiling on 2 cores)" >&2
	mkdir -p "$CENTRIFUGO_DIR"
	GOBIN="$CENTRIFUGO_DIR" GOFLAGS=-buildvcs=false go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
	echo "$CENTRIFUGO_VERSION" >"$CENTRIFUGO_DIR/.version"
}
