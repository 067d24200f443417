"""Stand-in for pip's get-pip.py, which ansible-test downloads from a site this network cannot reach.

ansible-test runs it inside an empty virtualenv with pip's install arguments. It bootstraps
pip from the interpreter's bundled wheel (ensurepip), then installs what was asked from the
package index, as get-pip.py would. get-pip.py's own --no-setuptools/--no-wheel are dropped:
pip install has no such options and installs neither unless asked.
"""
import ensurepip
import os
import subprocess
import sys

environment = dict(os.environ)  # ensurepip points PIP_CONFIG_FILE at /dev/null; pip needs the site's
ensurepip.bootstrap(upgrade=True)
arguments = [argument for argument in sys.argv[1:] if argument not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + arguments, env=environment))
