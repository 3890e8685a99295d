"""Nuke menu for monalisa: Nodes > monalisa > Animate Portrait (add this folder to NUKE_PATH)."""
import sys

try:
    import monalisa_nuke
except ImportError as exc:  # outside Nuke: one line, not a traceback
    sys.stderr.write(f"monalisa: {exc}\n")
    if __name__ == "__main__":
        sys.exit(2)
else:
    try:
        monalisa_nuke.install_menu()
    except Exception:  # a broken menu must not stop Nuke from starting
        import traceback

        traceback.print_exc()
