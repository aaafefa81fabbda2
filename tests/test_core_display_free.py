"""The engine never imports the display layer: the CLI and scripts stay light and the core
stays testable without a terminal."""

import subprocess
import sys


def test_core_and_sim_do_not_import_textual():
    code = (
        "import sys, pkgutil, importlib, batchtui.core, batchtui.sim\n"
        "for pkg in (batchtui.core, batchtui.sim):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'textual' or n.startswith('textual.'))\n"
        "print(len([n for n in sys.modules if n.startswith('batchtui.')]))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 10  # it really imported the modules
