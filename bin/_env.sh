# Shared by bin/* scripts: create and reuse the project's virtual environment.
# Sourced, not run. Honours GEOCOLOR_VENV (default: <repo>/.venv) and PYTHON (3.11+).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GEOCOLOR_VENV:-$ROOT/.venv}"

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
    done
    echo "geocolor: no python3 found; install Python 3.11 or newer" >&2
    return 1
}

# (Re)install when the venv is new or pyproject.toml changed since the last install.
ensure_venv() {
    local stamp="$VENV/.geocolor-installed" want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local python
    python="$(pick_python)" || return 1
    echo "geocolor: setting up $VENV (first run only; installs PyTorch and friends)" >&2
    if [ ! -x "$VENV/bin/python" ]; then
        "$python" -m venv "$VENV" || return 1
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" || {
        echo "geocolor: installing into $VENV failed (see pip's message above)" >&2
        return 1
    }
    echo "$want" > "$stamp"
}
